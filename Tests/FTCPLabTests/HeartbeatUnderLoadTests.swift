import Foundation
import XCTest

/// Heartbeats on time while both cores are kept busy: 100 MiB transfers through ftcp, one
/// after another, while `stress-ng --cpu 2` hogs the machine. No bridge may declare its healthy
/// peer failed (the primary's verdict ends the protection of every connection; the secondary's
/// takeover would be a split brain); the secondary's suspicions (a round of ARP probes, which
/// the primary's host answers) are counted and reported.
///
/// `FTCP_LOAD_TRANSFERS` sets the number of transfers (5 by default; the closing figure uses 50).
final class HeartbeatUnderLoadTests: RunningFTCPTestCase {
    func testNoFalseVerdictsWhileACPUHogRuns() throws {
        let lab = try requireLab()
        guard let stress = LabProcess.locate("stress-ng") else {
            XCTFail("stress-ng is not installed (deploy/setup.sh installs it)")
            return
        }
        let transfers = Int(ProcessInfo.processInfo.environment["FTCP_LOAD_TRANSFERS"] ?? "") ?? 5
        let hog = try lab.background(
            "client",
            "stress-ng",
            [
                stress, "--cpu", "2", "--timeout", "\(transfers * 10 + 30)s", "--quiet",
            ]
        )
        defer { hog.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(hog.process.isRunning, "stress-ng did not start: \(hog.errors)")
        var seconds: [Double] = []
        for index in 0..<transfers {
            let session = try lab.foreground(
                "client",
                "transfer-\(index)",
                [
                    lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "load\(index)",
                    "--download", String(100 << 20), "--upload", String(1 << 20), "--timeout-s", "60",
                ],
                timeout: .seconds(70)
            )
            XCTAssertEqual(session.lastLineFields["ok"], "1", "transfer \(index): \(session.output) \(session.errors)")
            seconds.append(Double(session.lastLineFields["seconds"] ?? "") ?? 0)
        }
        hog.stop()
        let primaryLog = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-primary.log", encoding: .utf8)) ?? ""
        let secondaryLog = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-secondary.log", encoding: .utf8)) ?? ""
        let primaryVerdicts = primaryLog.components(separatedBy: "secondary failed:").count - 1
        let takeovers = secondaryLog.components(separatedBy: "taking over the service address").count - 1
        let suspicions = secondaryLog.components(separatedBy: "primary bridge silent silence_ms").count - 1
        XCTAssertEqual(primaryVerdicts, 0, "the primary declared its healthy secondary failed under load")
        XCTAssertEqual(takeovers, 0, "the secondary took over a healthy primary under load")
        XCTAssertEqual(try status("primary")["state"] as? String, "replicating")
        print(
            "under a CPU hog: \(transfers) transfers of 100 MiB, \(String(format: "%.2f", seconds.reduce(0, +) / Double(max(1, seconds.count)))) s each on average; false failure verdicts: primary \(primaryVerdicts), takeovers \(takeovers); secondary's suspicions (ARP rounds, answered): \(suspicions)"
        )
    }
}
