import Foundation
import XCTest

/// `--relay digests` on both bridges (issue 13, item 1): the secondary relays digests of its
/// kernel's new bytes, not the bytes, and the guarantees stay: the client gets every byte
/// once, a failover loses nothing, and the primary's application dying leaves the connection to
/// the secondary's bytes, which it then relays whole.
final class DigestRelayLabTests: RunningFTCPTestCase {
    override var extraBridgeArguments: String? { "--relay digests" }

    private func counters(_ role: String) throws -> [String: Int] {
        try XCTUnwrap(try status(role)["counters"] as? [String: Int])
    }

    private func channelBytes(_ role: String) throws -> Int {
        try XCTUnwrap((try status(role)["replication"] as? [String: Int])?["sentBytes"])
    }

    /// A download costs the channel a small fraction of its bytes: with whole bytes it is more
    /// than all of them (1.085 in the benchmark). The digests are 16 bytes per about 1,420, the
    /// headers another 60 or so per relayed segment: about 0.013, bounded at 0.05 (the issue's
    /// target), which a return to whole bytes breaks twentyfold.
    func testADownloadCostsTheChannelAFractionOfItsBytes() throws {
        try waitFor("secondary", role: "secondary", state: "replicating")
        let before = try channelBytes("secondary") + channelBytes("primary")
        let bytes = 60_000_000
        let download = try session("digests-down", download: bytes, upload: 0)
        XCTAssertLessThan(finish([("digests-down", download)], context: "download"), 5_000)
        let cost = try channelBytes("secondary") + channelBytes("primary") - before
        let ratio = Double(cost) / Double(bytes)
        print("digest-relay channel_bytes=\(cost) delivered=\(bytes) ratio=\(ratio)")
        XCTAssertLessThan(ratio, 0.05, "the channel carried \(cost) bytes for \(bytes) delivered")
        XCTAssertGreaterThan(try counters("secondary")["relayedAsDigests"] ?? 0, 0)
        let primary = try status("primary")
        let connections = primary["connections"] as? [[String: Any]] ?? []
        XCTAssertTrue(connections.allSatisfy { $0["divergences"] as? Int == 0 }, "\(connections)")
    }

    /// The primary's application is killed during a download, an upload and idle sessions: the
    /// primary asks the secondary to relay those connections whole (it had only digests of the
    /// secondary's bytes) and each finishes from the secondary's copy, byte-exact.
    func testPrimaryApplicationKilledMidTransfer() throws {
        try waitFor("secondary", role: "secondary", state: "replicating")
        try requireLab().impair("client", "rate 200mbit")
        var sessions: [(String, LabProcess)] = [
            ("down", try session("down", download: 100_000_000, upload: 0)),
            ("up", try session("up", download: 1_000, upload: 60_000_000)),
        ]
        for index in 0..<3 {
            sessions.append(
                (
                    "idle-\(index)",
                    try session("idle-\(index)", download: 100_000, upload: 50_000, thinkMilliseconds: 300)
                )
            )
        }
        Thread.sleep(forTimeInterval: 1.0)
        try labScript(["kill", "primary", "app"])
        let stall = finish(sessions, context: "primary application killed")
        XCTAssertLessThan(stall, 2_000)
        XCTAssertGreaterThan(try counters("primary")["relayWholeRequested"] ?? 0, 0, "no connection was asked whole")
    }

    /// The primary host is cut off in the middle of a download: the secondary, which held its
    /// own bytes all along, takes over and the client gets every byte.
    func testFailoverInTheMiddleOfADownload() throws {
        try waitFor("secondary", role: "secondary", state: "replicating")
        // At 1 Gbit/s the download lasts over 3 s, so the cut surely falls inside it (unshaped,
        // 400 MB can take under a second here).
        try requireLab().impair("client", "rate 1gbit")
        let download = try session("failover", download: 400_000_000, upload: 0)
        Thread.sleep(forTimeInterval: 0.6)
        XCTAssertTrue(download.process.isRunning, "the download ended before the cut: \(download.output)")
        try labScript(["fail", "primary"])
        let stall = finish([("failover", download)], context: "failover")
        XCTAssertLessThan(stall, 1_000)
    }

    /// Loss on each server's link hits the digests' datagrams too: sessions echoed both ways at
    /// once still finish, as plain TCP under the same loss does.
    func testEchoUnderLossOnEachServerLink() throws {
        let lab = try requireLab()
        try waitFor("secondary", role: "secondary", state: "replicating")
        for link in ["primary", "secondary"] {
            try lab.impair(link, "loss 3%")
            let (status, run) = try lab.run(
                "client",
                "echo-\(link)",
                [
                    lab.labtool, "echo-stream", "--connect", "\(serviceAddress):9999", "--bytes", "15000000", "--rate",
                    "8000000", "--timeout-s", "60", "--hang-s", "20",
                ],
                timeout: .seconds(75)
            )
            try lab.impair(link, "off")
            let fields = run.lastLineFields
            XCTAssertEqual(status, 0, "3% loss on the \(link)'s link: \(run.output) \(run.errors)")
            XCTAssertEqual(fields["ok"], "1", "3% loss on the \(link)'s link: \(run.output)")
            // Plain TCP under 3% loss waits up to about a second here (LossComparisonLabTests).
            XCTAssertLessThanOrEqual(Int(fields["longest_stall_ms"] ?? "") ?? .max, 4_000, run.output)
        }
    }
}
