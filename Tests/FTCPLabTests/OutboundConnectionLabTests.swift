import Foundation
import XCTest

/// Connections the servers' applications open (Koch et al. §7.2): an application on both servers
/// streams to a back-end (the client namespace, 10.80.0.10:6000, as the unreplicated host T), its
/// two connections merged into one from the service address; the primary is cut off in the
/// middle of the stream and the back-end still receives every byte once.
final class OutboundConnectionLabTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }
    override var extraBridgeArguments: String? { "--protect-outbound 10.80.0.10:6000" }
    static let bytes = 60_000_000

    /// Starts the back-end and the same stream on both servers; returns them once the merged
    /// connection replicates.
    private func startStream(rate: Int) throws -> (sink: LabProcess, primary: LabProcess, secondary: LabProcess) {
        let lab = try requireLab()
        let sink = try lab.background(
            "client",
            "back-end",
            [lab.labtool, "sink", "--listen", "10.80.0.10:6000", "--timeout-s", "60"]
        )
        XCTAssertTrue(sink.waitForError(containing: "listening", timeout: .seconds(5)), "the back-end did not listen")
        let arguments = [
            lab.labtool, "source", "--connect", "10.80.0.10:6000", "--bytes", String(Self.bytes),
            "--rate-megabytes", String(rate), "--timeout-s", "60",
        ]
        let primary = try lab.background("primary", "stream-primary", arguments)
        let secondary = try lab.background("secondary", "stream-secondary", arguments)
        return (sink, primary, secondary)
    }

    /// The connections of `host`'s status that the servers opened.
    private func outbound(_ host: String) throws -> [[String: Any]] {
        let connections = try XCTUnwrap(try status(host)["connections"] as? [[String: Any]])
        return connections.filter { $0["direction"] as? String == "outbound" }
    }

    func testAStreamToABackEndSurvivesTheCutOfThePrimary() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        // 60 MB at 20 MB/s: about 3 s, cut after 1 s.
        let (sink, primary, secondary) = try startStream(rate: 20)
        defer { primary.stop() }
        Thread.sleep(forTimeInterval: 1.0)
        let merged = try outbound("primary")
        XCTAssertEqual(merged.count, 1, "one merged connection at the primary: \(merged)")
        XCTAssertEqual(merged.first?["phase"] as? String, "replicating", "\(merged)")
        XCTAssertEqual(merged.first?["client"] as? String, "10.80.0.10")
        XCTAssertEqual(try outbound("secondary").count, 1, "the secondary tracks the connection its kernel opened")

        try labScript(["fail", "primary"])
        XCTAssertTrue(sink.wait(timeout: .seconds(60)), "the back-end's stream did not end")
        XCTAssertTrue(secondary.wait(timeout: .seconds(30)), "the secondary's application did not finish")
        let received = sink.lastLineFields
        let sent = secondary.lastLineFields
        XCTAssertEqual(received["bytes"], String(Self.bytes), "back-end: \(sink.output) \(sink.errors)")
        XCTAssertEqual(
            received["sha256"],
            sent["sha256"],
            "every byte once, in order: \(sink.output) \(secondary.output)"
        )
        XCTAssertNotNil(sent["sha256"], "the secondary's stream: \(secondary.output) \(secondary.errors)")
        let stall = Int(received["longest_stall_ms"] ?? "") ?? .max
        XCTAssertLessThanOrEqual(stall, 1_500, "the back-end waited too long at the takeover")
        print("outbound connection through the cut of the primary: the back-end's longest wait \(stall) ms")
        let survivor = try waitFor("secondary", role: "primary", state: "alone")
        let inherited = try XCTUnwrap(survivor["connections"] as? [[String: Any]])
        XCTAssertTrue(
            inherited.contains { $0["client"] as? String == "10.80.0.10" && $0["serverPort"] != nil },
            "the survivor inherited the outbound connection: \(inherited)"
        )
    }

    func testWithoutAFailureTheBackEndSeesOneConnectionFromTheServiceAddress() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let capture = try requireLab().startCapture(
            on: "client",
            filter: "tcp and port 6000 and tcp[tcpflags] & tcp-syn != 0"
        )
        let (sink, primary, secondary) = try startStream(rate: 0)
        XCTAssertTrue(sink.wait(timeout: .seconds(60)), "the back-end's stream did not end")
        XCTAssertTrue(primary.wait(timeout: .seconds(30)) && secondary.wait(timeout: .seconds(30)))
        XCTAssertEqual(sink.lastLineFields["bytes"], String(Self.bytes))
        XCTAssertEqual(sink.lastLineFields["sha256"], primary.lastLineFields["sha256"])
        XCTAssertEqual(primary.lastLineFields["sha256"], secondary.lastLineFields["sha256"])
        let synSources = try capture.finish().ipv4Packets.map(\.source)
        XCTAssertFalse(synSources.isEmpty, "the capture saw no handshake")
        XCTAssertEqual(
            Set(synSources),
            ["10.80.0.100", "10.80.0.10"],
            "only the service address talks to the back-end (neither server's own address)"
        )
        let counters = try XCTUnwrap(try status("primary")["counters"] as? [String: Any])
        XCTAssertEqual(counters["outboundPaired"] as? Int, 1, "\(counters)")
        XCTAssertEqual(counters["outboundServedAlone"] as? Int, 0, "\(counters)")
    }
}
