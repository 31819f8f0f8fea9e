import Foundation
import XCTest

/// Failover on the lab: the primary (or the secondary) is cut off in the middle of a checked
/// session — its link taken down and its bridge and server killed with SIGKILL — and the
/// client's session must finish with every byte right, without a reset.
final class FailoverEndToEndTests: RunningFTCPTestCase {
    /// Runs a session in the background, cuts `victim` off after `delay`, and returns the
    /// session's result fields.
    @discardableResult
    private func sessionAcrossFailure(of victim: String, download: Int, upload: Int, after delay: Double,
                                      name: String = "session") throws -> [String: String] {
        let lab = try requireLab()
        let session = try lab.background("client", name, [
            lab.labtool, "session", "--connect", "10.80.0.1:9999", "--download", String(download),
            "--upload", String(upload), "--timeout-s", "120",
        ])
        Thread.sleep(forTimeInterval: delay)
        let cut = try lab.labScriptResult(["fail", victim], environment: ["FTCP_BIN": binaries])
        XCTAssertEqual(cut.status, 0, cut.output)
        XCTAssertTrue(session.wait(timeout: .seconds(130)), "the session did not finish")
        XCTAssertEqual(session.process.terminationStatus, 0, "session: \(session.output) \(session.errors)")
        let fields = session.lastLineFields
        XCTAssertEqual(fields["ok"], "1", "session: \(session.output) \(session.errors)")
        print("\(victim) cut off after \(delay) s: \(fields)")
        return fields
    }

    func testPrimaryCutOffDuringDownloadAndUpload() throws {
        let lab = try requireLab()
        let resets = try lab.startCapture(on: "client", filter: "tcp and src port 9999 and tcp[13] & 4 != 0")
        var generator = SystemRandomNumberGenerator()
        let delay = Double.random(in: 0.2...0.8, using: &generator)
        try sessionAcrossFailure(of: "primary", download: 200_000_000, upload: 50_000_000, after: delay)
        let secondary = try status("secondary")
        XCTAssertEqual(secondary["state"] as? String, "promoted", "\(secondary)")
        XCTAssertEqual(try resets.finish().ipv4Packets.count, 0, "a server's RST reached the client")
    }

    func testPrimaryCutOffDuringUpload() throws {
        try sessionAcrossFailure(of: "primary", download: 0, upload: 300_000_000, after: 0.5)
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
    }

    func testSecondaryCutOffPrimaryGoesOnAlone() throws {
        try sessionAcrossFailure(of: "secondary", download: 200_000_000, upload: 50_000_000, after: 0.5)
        let primary = try status("primary")
        XCTAssertEqual(primary["state"] as? String, "alone", "\(primary)")
    }

    /// Only the replication channel is cut: both servers live. The secondary must not take the
    /// primary's address (the primary still answers ARP for it), the primary goes on alone, and
    /// the session survives.
    func testPartitionLeavesOneOwnerOfTheServiceAddress() throws {
        let lab = try requireLab()
        let session = try lab.background("client", "session", [
            lab.labtool, "session", "--connect", "10.80.0.1:9999", "--download", "100000000",
            "--upload", "20000000", "--timeout-s", "120",
        ])
        Thread.sleep(forTimeInterval: 0.3)
        let cut = try lab.labScriptResult(["partition", "on"], environment: [:])
        XCTAssertEqual(cut.status, 0, cut.output)
        Thread.sleep(forTimeInterval: 1.5)
        let secondary = try status("secondary")
        XCTAssertNotEqual(secondary["state"] as? String, "promoted", "split brain: \(secondary)")
        XCTAssertEqual(try status("primary")["state"] as? String, "alone")
        let addresses = try lab.foreground("secondary", "addresses", ["ip", "-4", "addr", "show", "dev", "eth0"])
        XCTAssertFalse(addresses.output.contains("10.80.0.1/"), "the secondary claimed the primary's address")
        XCTAssertTrue(session.wait(timeout: .seconds(130)))
        XCTAssertEqual(session.lastLineFields["ok"], "1", "session: \(session.output) \(session.errors)")
    }

    /// The primary cut off at random points of transfers, half downloads and half uploads, on a
    /// fresh lab each time. Every trial must be byte-exact and free of resets; the client-visible
    /// stall of each is recorded. FTCP_FAILOVER_TRIALS sets the number (20 by default).
    func testPrimaryCutOffAtRandomPoints() throws {
        let lab = try requireLab()
        let trials = Int(ProcessInfo.processInfo.environment["FTCP_FAILOVER_TRIALS"] ?? "") ?? 20
        var generator = SystemRandomNumberGenerator()
        var stalls: [Double] = []
        for trial in 0..<trials {
            if trial > 0 {
                try lab.up()
                let start = try lab.labScriptResult(["ftcp", "start"], environment: ["FTCP_BIN": binaries])
                XCTAssertEqual(start.status, 0, start.output)
            }
            let resets = try lab.startCapture(on: "client", filter: "tcp and src port 9999 and tcp[13] & 4 != 0")
            let download = trial % 2 == 0
            let delay = Double.random(in: 0.1...0.9, using: &generator)
            let fields = try sessionAcrossFailure(of: "primary", download: download ? 150_000_000 : 0,
                                                  upload: download ? 0 : 150_000_000, after: delay, name: "trial-\(trial)")
            let stall = Double(fields[download ? "longest_stall_ms" : "longest_upload_stall_ms"] ?? "") ?? .nan
            stalls.append(stall)
            XCTAssertEqual(try resets.finish().ipv4Packets.count, 0, "trial \(trial): a server's RST reached the client")
            print("failover trial \(trial): \(download ? "download" : "upload"), cut after \(String(format: "%.3f", delay)) s, stall \(stall) ms")
        }
        let sorted = stalls.sorted()
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        print("failover stalls over \(trials) trials: median \(percentile(0.5)) ms, p99 \(percentile(0.99)) ms, max \(sorted.last ?? .nan) ms")
    }

    /// 50 connections in flight when the primary dies: every one finishes, byte-exact.
    func testPrimaryCutOffWithFiftyConnections() throws {
        let lab = try requireLab()
        let sessions = try (0..<50).map { index in
            try lab.background("client", "session-\(index)", [
                lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "c\(index)",
                "--download", "20000000", "--upload", "5000000", "--timeout-s", "120",
            ])
        }
        Thread.sleep(forTimeInterval: 0.4)
        let cut = try lab.labScriptResult(["fail", "primary"], environment: ["FTCP_BIN": binaries])
        XCTAssertEqual(cut.status, 0, cut.output)
        for (index, run) in sessions.enumerated() {
            XCTAssertTrue(run.wait(timeout: .seconds(130)), "session \(index) did not finish")
            XCTAssertEqual(run.lastLineFields["ok"], "1", "session \(index): \(run.output) \(run.errors)")
        }
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
    }

    /// Connections being opened while the primary dies: handshakes that were half done
    /// through the primary and ones that start after the takeover all end in a working session.
    func testPrimaryCutOffDuringHandshakes() throws {
        let lab = try requireLab()
        var sessions: [LabProcess] = []
        for index in 0..<20 {
            if index == 5 {
                let cut = try lab.labScriptResult(["fail", "primary"], environment: ["FTCP_BIN": binaries])
                XCTAssertEqual(cut.status, 0, cut.output)
            }
            sessions.append(try lab.background("client", "session-\(index)", [
                lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "h\(index)",
                "--download", "100000", "--upload", "100000", "--timeout-s", "60",
            ]))
            Thread.sleep(forTimeInterval: 0.01)
        }
        for (index, run) in sessions.enumerated() {
            XCTAssertTrue(run.wait(timeout: .seconds(70)), "session \(index) did not finish")
            XCTAssertEqual(run.lastLineFields["ok"], "1", "session \(index): \(run.output) \(run.errors)")
        }
    }
}
