import Foundation
import XCTest

/// Loss on one link, against plain TCP under the same loss in the same run (issue 13, item 5):
/// a stream echoed both ways at once (`ftcp-labtool echo-stream`: the client sends at 8 MB/s and
/// reads the echo while it sends), through ftcp and to a plain demo server on the host behind the
/// same lossy link, under 1% and 3% loss on the client's, the primary's and the secondary's link.
/// A session through ftcp must never hang, and neither wait much longer nor take much longer than
/// plain TCP: before the fixes it found, 1% loss on the primary's link hung every such session
/// for tens of seconds.
final class LossComparisonLabTests: RunningFTCPTestCase {
    /// The port of the plain demo servers, which no bridge protects.
    let plainPort = 9997
    let bytes = 15_000_000

    private func echo(_ target: String, _ name: String) throws -> (
        ok: Bool, seconds: Double, stallMs: Int, line: String
    ) {
        let lab = try requireLab()
        let (status, run) = try lab.run(
            "client",
            name,
            [
                lab.labtool, "echo-stream", "--connect", target, "--bytes", String(bytes), "--rate", "8000000",
                "--timeout-s", "60", "--hang-s", "20",
            ],
            timeout: .seconds(75)
        )
        let fields = run.lastLineFields
        return (
            status == 0 && fields["ok"] == "1", Double(fields["seconds"] ?? "") ?? 0,
            Int(fields["longest_stall_ms"] ?? "") ?? 0, run.output.split(separator: "\n").last.map(String.init) ?? ""
        )
    }

    func testEchoUnderLossOnEachLinkAgainstPlainTCP() throws {
        let lab = try requireLab()
        let demoServer = try Lab.binary("ftcp-demo-server", variable: "FTCP_DEMO_SERVER")
        var plainServers: [LabProcess] = []
        defer { for server in plainServers { server.stop() } }
        for host in ["primary", "secondary"] {
            plainServers.append(
                try lab.background(host, "plain-\(host)", [demoServer, "--listen", "0.0.0.0:\(plainPort)"])
            )
        }
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        Thread.sleep(forTimeInterval: 0.5)
        var report: [String] = []
        for loss in ["1%", "3%"] {
            for link in ["client", "primary", "secondary"] {
                try lab.impair(link, "loss \(loss)")
                // Plain TCP to the server behind the lossy link (the primary's for the client's link).
                let plainHost = link == "secondary" ? "10.80.0.2" : "10.80.0.1"
                let plain = try echo("\(plainHost):\(plainPort)", "plain-\(link)-\(loss)")
                let ftcp = try echo("\(serviceAddress):9999", "ftcp-\(link)-\(loss)")
                try lab.impair(link, "off")
                let context = "loss \(loss) on the \(link)'s link: plain \(plain.line); ftcp \(ftcp.line)"
                report.append(context)
                XCTAssertTrue(plain.ok, "plain TCP failed, so the comparison means nothing: \(context)")
                XCTAssertTrue(ftcp.ok, "the session through ftcp hung or failed: \(context)")
                // Bounds wide enough for a retransmission timeout or two that plain TCP happened
                // to escape in its run, far below the hangs of tens of seconds they catch.
                XCTAssertLessThanOrEqual(ftcp.stallMs, max(4_000, 3 * plain.stallMs), context)
                XCTAssertLessThanOrEqual(ftcp.seconds, max(2 * plain.seconds, plain.seconds + 5), context)
            }
        }
        print("loss comparison:\n" + report.joined(separator: "\n"))
    }
}
