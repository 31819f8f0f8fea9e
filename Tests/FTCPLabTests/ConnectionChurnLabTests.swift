import Foundation
import XCTest

/// Connection churn through ftcp: short connections (1 KB echoed each) at 1,000 a second, far
/// more than the tables hold while closed connections linger there (16,384 entries, 60 s): every
/// connection succeeds, the tables give closed entries up for new ones, and the bridges' memory
/// stays bounded. `FTCP_CHURN_SECONDS` sets the length (CI: 25 s; the issue's figure: 90 s).
final class ConnectionChurnLabTests: RunningFTCPTestCase {
    /// A bridge process's resident memory in MiB, from /proc.
    private func residentMiB(_ host: String) throws -> Double {
        let pid = try XCTUnwrap(try status(host)["pid"] as? Int, "\(host)'s status names no pid")
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kilobytes = Double(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        return kilobytes / 1024
    }

    func testAThousandShortConnectionsASecond() throws {
        let lab = try requireLab()
        let seconds = Int(ProcessInfo.processInfo.environment["FTCP_CHURN_SECONDS"] ?? "") ?? 25
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        // The client's own TIME_WAIT sockets would cap it near 470 connections a second.
        let (sysctlStatus, sysctl) = try lab.run(
            "client",
            "sysctl",
            ["sysctl", "-w", "net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000"]
        )
        XCTAssertEqual(sysctlStatus, 0, sysctl.errors)
        let before = (primary: try residentMiB("primary"), secondary: try residentMiB("secondary"))
        let churn = try lab.background(
            "client",
            "churn",
            [
                lab.labtool, "churn", "--connect", "\(serviceAddress):9999", "--rate", "1000", "--seconds",
                String(seconds), "--timeout-s", String(seconds + 40),
            ]
        )
        // The tables are full (16,384 entries, closed ones lingering 60 s) after about 17 s; from
        // then on closed entries give way to new ones and memory should stay where it is.
        Thread.sleep(forTimeInterval: 20)
        let full = (primary: try residentMiB("primary"), secondary: try residentMiB("secondary"))
        XCTAssertTrue(churn.wait(timeout: .seconds(Double(seconds + 60))), "churn did not finish")
        XCTAssertEqual(churn.process.terminationStatus, 0, "churn: \(churn.output) \(churn.errors)")
        let fields = churn.lastLineFields
        XCTAssertEqual(fields["failed"], "0", "connections failed: \(churn.output) \(churn.errors)")
        XCTAssertEqual(fields["completed"], String(1000 * seconds), "\(churn.output)")
        let after = (primary: try residentMiB("primary"), secondary: try residentMiB("secondary"))
        print(
            "churn \(seconds) s at 1000/s: \(churn.output.split(separator: "\n").last ?? "") rss_mib primary "
                + "\(Int(before.primary))->\(Int(full.primary))->\(Int(after.primary)) secondary "
                + "\(Int(before.secondary))->\(Int(full.secondary))->\(Int(after.secondary)) (start, tables full, end)"
        )
        let counters = try XCTUnwrap(try self.status("primary")["counters"] as? [String: Any])
        print(
            "churn: kernels' ACKs of a previous connection on used ports passed to clients: "
                + "\(counters["previousConnectionsAnswered"] as? Int ?? 0)"
        )
        XCTAssertEqual(counters["droppedTableFull"] as? Int, 0, "new connections found the table full: \(counters)")
        if seconds * 1000 > 16_384 {
            XCTAssertGreaterThan(
                counters["evictedClosed"] as? Int ?? 0,
                0,
                "closed connections never had to give way, so the table's bound was not exercised: \(counters)"
            )
        }
        // Filling the tables costs some tens of MiB (measured: about 30 on each); past that a leak
        // of even 1 KB per connection would add tens of MiB for every further 20,000.
        XCTAssertLessThan(full.primary - before.primary, 96, "the primary's tables cost more than they should")
        XCTAssertLessThan(full.secondary - before.secondary, 96, "the secondary's tables cost more than they should")
        if seconds >= 60 {
            XCTAssertLessThan(after.primary - full.primary, 24, "the primary's memory grew past the full table")
            XCTAssertLessThan(after.secondary - full.secondary, 24, "the secondary's memory grew past the full table")
        }
    }
}
