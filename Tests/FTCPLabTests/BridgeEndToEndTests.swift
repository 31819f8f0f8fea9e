import Foundation
import XCTest

/// The bridges end to end on the lab: real kernel TCP on client, primary and secondary, the
/// release build of ftcp-bridge and the demo server on both servers, the client talking to
/// the service address 10.80.0.1:9999 with a checked session (ftcp-labtool session: every
/// answer, every downloaded byte and the upload's SHA-256 are verified).
final class BridgeEndToEndTests: RunningFTCPTestCase {
    /// Runs one checked session from the client; returns its result fields.
    @discardableResult
    private func session(download: Int, upload: Int, extra: [String] = [], timeout: Int = 120, name: String = "session")
        throws -> [String: String]
    {
        let lab = try requireLab()
        let run = try lab.foreground(
            "client",
            name,
            [
                lab.labtool, "session", "--connect", "10.80.0.1:9999", "--download", String(download),
                "--upload", String(upload), "--timeout-s", String(timeout),
            ] + extra,
            timeout: .seconds(Int64(timeout + 10))
        )
        let fields = run.lastLineFields
        XCTAssertEqual(fields["ok"], "1", "session output: \(run.output) \(run.errors)")
        return fields
    }

    private func primaryStatus() throws -> [String: Any] { try status("primary") }

    private func counters(_ status: [String: Any]) -> [String: Int] {
        (status["counters"] as? [String: Int]) ?? [:]
    }

    /// Every connection the primary tracked was replicated and never diverged.
    private func assertReplicatedWithoutDivergence(
        minimumConnections: Int,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let status = try primaryStatus()
        let connections = (status["connections"] as? [[String: Any]]) ?? []
        XCTAssertGreaterThanOrEqual(
            connections.count,
            minimumConnections,
            "primary status: \(status)",
            file: file,
            line: line
        )
        for connection in connections {
            XCTAssertEqual(connection["divergences"] as? Int, 0, "\(connection)", file: file, line: line)
            XCTAssertNotEqual(connection["phase"] as? String, "handshake", "\(connection)", file: file, line: line)
        }
        let c = counters(status)
        XCTAssertGreaterThan(
            c["segmentsFromSecondaryKernel"] ?? 0,
            0,
            "the secondary's segments never reached the primary",
            file: file,
            line: line
        )
        XCTAssertEqual(
            c["passedUnprotectedFromPrimary"] ?? -1,
            0,
            "a connection bypassed the merge",
            file: file,
            line: line
        )
    }

    func testOneByteEachWay() throws {
        try session(download: 1, upload: 1)
        try assertReplicatedWithoutDivergence(minimumConnections: 1)
    }

    func testSixtyFourKibibytesEachWay() throws {
        try session(download: 65_536, upload: 65_536)
        try assertReplicatedWithoutDivergence(minimumConnections: 1)
    }

    func testHundredMebibytesEachWay() throws {
        let result = try session(download: 100 << 20, upload: 100 << 20, timeout: 240)
        print("100 MiB each way through the bridges: \(result)")
        try assertReplicatedWithoutDivergence(minimumConnections: 1)
        // The offloads were in use and never refused: the primary's super-segments to the
        // client, and the secondary's kernel's GSO super-segments relayed in pieces. (Whether
        // the secondary joins captured segments before injecting them depends on the capture:
        // when the link's receive offload already joined them, there is nothing left to join.)
        let primary = counters(try primaryStatus())
        XCTAssertGreaterThan(primary["superSegmentsSent"] ?? 0, 0, "\(primary)")
        XCTAssertEqual(primary["superSegmentErrors"] ?? 0, 0, "\(primary)")
        let secondary = counters(try status("secondary"))
        // The secondary's GSO super-segments go as digests of their new bytes (`--relay digests`)
        // or, retransmitted, whole in pieces.
        XCTAssertGreaterThan(
            (secondary["relayedSuperSegments"] ?? 0) + (secondary["relayedAsDigests"] ?? 0),
            0,
            "\(secondary)"
        )
        XCTAssertEqual(secondary["injectErrors"] ?? 0, 0, "\(secondary)")
        print(
            "secondary: \(secondary["injected"] ?? 0) captured segments injected, \(secondary["injectedRuns"] ?? 0) runs joined"
        )
    }

    func testFiftyConcurrentConnections() throws {
        let lab = try requireLab()
        let sessions = try (0..<50).map { index in
            try lab.background(
                "client",
                "session-\(index)",
                [
                    lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "c\(index)",
                    "--download", "1000000", "--upload", "1000000", "--timeout-s", "120",
                ]
            )
        }
        for (index, run) in sessions.enumerated() {
            XCTAssertTrue(run.wait(timeout: .seconds(150)), "session \(index) did not finish")
            XCTAssertEqual(run.process.terminationStatus, 0, "session \(index): \(run.output) \(run.errors)")
            XCTAssertEqual(run.lastLineFields["ok"], "1", "session \(index): \(run.output)")
        }
        try assertReplicatedWithoutDivergence(minimumConnections: 50)
    }

    func testHalfClosedConnectionKeepsReceiving() throws {
        let result = try session(download: 5_000_000, upload: 0, extra: ["--half-close"])
        XCTAssertEqual(result["half_closed"], "1")
        try assertReplicatedWithoutDivergence(minimumConnections: 1)
    }

    func testLossAndReorderingOnTheClientLink() throws {
        let lab = try requireLab()
        try lab.impair("client", "loss 1% reorder 5% delay 1ms")
        try session(download: 10_000_000, upload: 10_000_000, timeout: 180)
        let impairment = try lab.impairStatistics(host: "client")
        XCTAssertGreaterThan(impairment["reordered"] ?? 0, 0, "the impairment did not reorder anything: \(impairment)")
        try assertReplicatedWithoutDivergence(minimumConnections: 1)
    }

    func testLossOnEachServerLink() throws {
        let lab = try requireLab()
        for host in ["primary", "secondary"] {
            try lab.impair(host, "loss 1%")
            try session(download: 5_000_000, upload: 5_000_000, timeout: 180, name: "session-\(host)")
            try lab.impair(host, "off")
        }
        try assertReplicatedWithoutDivergence(minimumConnections: 2)
    }

    /// A client uses its ports again while both servers' kernels still hold the previous
    /// connection on them (its reset never reached them: here a rule on each server drops it
    /// after the bridge saw it). Each kernel answers the new SYN with an ACK of the old
    /// connection (RFC 5961 §4); with one server the client answers that with a reset that
    /// ends it, and its next SYN, milliseconds later, opens the new connection. Through ftcp it
    /// must be the same, not a client whose SYNs go unanswered until it gives up.
    func testAClientReusingPortsTheKernelsStillHoldGetsThrough() throws {
        let lab = try requireLab()
        let port = "45678"
        let dropResets = [
            "-p", "tcp", "-s", "10.80.0.10", "--dport", "9999", "--sport", port, "--tcp-flags", "RST", "RST", "-j",
            "DROP",
        ]
        for host in ["primary", "secondary"] {
            try lab.foreground(host, "drop-resets", ["iptables", "-I", "INPUT"] + dropResets)
        }
        let first = try lab.foreground(
            "client",
            "aborted",
            [
                lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "before", "--local-port", port,
                "--abort", "--timeout-s", "10",
            ]
        )
        XCTAssertEqual(first.lastLineFields["aborted"], "1", first.output)
        Thread.sleep(forTimeInterval: 0.3)
        for host in ["primary", "secondary"] {
            // The precondition: the kernel kept the connection the client reset.
            let held = try lab.foreground(host, "ss", ["ss", "-Htn", "state", "established", "dport", "= :\(port)"])
            XCTAssertEqual(
                held.output.split(separator: "\n").count,
                1,
                "\(host)'s kernel should still hold the reset connection: \(held.output)"
            )
            try lab.foreground(host, "allow-resets", ["iptables", "-D", "INPUT"] + dropResets)
        }
        let again = try lab.foreground(
            "client",
            "again",
            [
                lab.labtool, "session", "--connect", "10.80.0.1:9999", "--name", "after", "--local-port", port,
                "--download", "100000", "--timeout-s", "20",
            ],
            timeout: .seconds(30)
        )
        XCTAssertEqual(again.lastLineFields["ok"], "1", again.output)
        // Linux sends its SYN again a few milliseconds after answering such an ACK with a reset
        // (measured here: the whole session in 12 ms); a client left unanswered would still be
        // trying after 1, 3, 7 and 15 s (without the fix, it was still trying when killed at 30 s).
        let seconds = Double(again.lastLineFields["seconds"] ?? "") ?? .infinity
        XCTAssertLessThan(seconds, 2.5, "the session on the used ports took \(seconds) s: \(again.output)")
        let counters = try XCTUnwrap(try status("primary")["counters"] as? [String: Any])
        let answered = counters["previousConnectionsAnswered"] as? Int ?? 0
        XCTAssertGreaterThanOrEqual(answered, 1, "no kernel's ACK of the held connection was passed: \(counters)")
        print("ports used again while the kernels held them: session in \(seconds) s, \(answered) ACKs passed")
    }

    /// The paper's guarantee, checked from captures: the client never receives an ACK for a
    /// byte the secondary's kernel had not yet acknowledged itself. The secondary's segments
    /// never reach the wire as such (they are diverted); they cross it inside the replication
    /// channel's datagrams, which are authenticated but not encrypted, so a capture of those at
    /// the primary shows every ACK the secondary sent and when it arrived. Both captures run on
    /// one machine with one clock. The secondary relays one segment per datagram here
    /// (`--relay-bundle-bytes 0`): a bundle's later packets travel in IP fragments without a UDP
    /// header, which the capture filter cannot select.
    func testClientNeverSeesAnAcknowledgmentTheSecondaryHasNotSent() throws {
        let lab = try requireLab()
        let stop = try lab.labScriptResult(["ftcp", "stop"], environment: ["FTCP_BIN": binaries])
        XCTAssertEqual(stop.status, 0, stop.output)
        let start = try lab.labScriptResult(
            ["ftcp", "start"],
            environment: ["FTCP_BIN": binaries, "FTCP_BRIDGE_ARGS": "--relay-bundle-bytes 0"]
        )
        XCTAssertEqual(start.status, 0, start.output)
        let replication = try lab.startCapture(
            on: "primary",
            filter: "udp and src host 10.80.0.2 and dst port 7400",
            snapLength: 160
        )
        let client = try lab.startCapture(
            on: "client",
            filter: "tcp and src host 10.80.0.1 and src port 9999",
            snapLength: 128
        )
        try lab.impair("secondary", "loss 2%")
        try session(download: 2_000_000, upload: 20_000_000, timeout: 180)
        Thread.sleep(forTimeInterval: 0.3)
        let atClient = try client.finish().ipv4Packets
        let relayed = try replication.finish().ipv4Packets

        // The secondary's ACKs per client port, in arrival order: each datagram is a 28-byte
        // header, then (type 1, segment) the secondary's IPv4 packet, or (type 7, digests of
        // new bytes: one entry, unbundled) a count, the header's length and the packet's headers.
        var secondaryAcks: [UInt16: [(time: Double, ack: UInt32)]] = [:]
        for datagram in relayed {
            let body = Array(datagram.capturedPayload)
            guard body.count >= 28 + 40, body[5] == 1 || body[5] == 7 else { continue }
            let ip = Array(body[(body[5] == 7 ? 32 : 28)...])
            let tcp = Int(ip[0] & 0x0F) * 4
            guard ip.count >= tcp + 14, ip[tcp + 13] & 0x10 != 0 else { continue }
            let port = UInt16(ip[tcp + 2]) << 8 | UInt16(ip[tcp + 3])
            let ack = ip[(tcp + 8)..<(tcp + 12)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            secondaryAcks[port, default: []].append((datagram.timestamp, ack))
        }
        XCTAssertGreaterThan(
            secondaryAcks.values.map(\.count).reduce(0, +),
            100,
            "too few of the secondary's segments captured"
        )
        XCTAssertGreaterThan(atClient.count, 100)

        var checked = 0
        var violations: [String] = []
        for packet in atClient where (packet.tcpFlags ?? 0) & 0x10 != 0 {
            guard let port = packet.destinationPort, let ack = packet.tcpAcknowledgment else { continue }
            // The largest ACK the secondary had sent by the time the client received this one.
            let sentBefore = (secondaryAcks[port] ?? []).filter { $0.time <= packet.timestamp }.map(\.ack)
            guard let best = sentBefore.max(by: { Int32(bitPattern: $1 &- $0) > 0 }) else {
                violations.append("ACK \(ack) before any of the secondary's")
                continue
            }
            if Int32(bitPattern: best &- ack) < 0 {
                violations.append("ACK \(ack) when the secondary had sent \(best)")
            }
            checked += 1
        }
        print("checked \(checked) acknowledgments at the client against \(relayed.count) relayed segments")
        XCTAssertEqual(violations.count, 0, "first violations: \(violations.prefix(5))")
        XCTAssertGreaterThan(checked, 100)
    }
}
