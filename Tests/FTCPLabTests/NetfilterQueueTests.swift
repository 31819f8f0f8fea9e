import FTCPLinux
import Foundation
import XCTest

/// Drives ``NetfilterQueue`` against the real kernel in the lab's hub namespace: verdicts out of
/// order, drop, accept with a replacement payload and a mark, and a rejected double verdict.
final class NetfilterQueueTests: LabTestCase {
    func testVerdictsOutOfOrderDropAndReplacePayload() throws {
        let lab = try XCTUnwrap(lab)
        let queueNumber: UInt16 = 200
        let queue = try NetworkNamespace.run(in: "ftcp-hub") {
            try NetfilterQueue.open(queue: queueNumber, options: .init(receiveBufferBytes: 4 << 20))
        }
        defer { try? queue.close() }
        XCTAssertGreaterThanOrEqual(queue.effectiveReceiveBufferBytes, 4 << 20)

        // A second binding of the same queue is refused with advice.
        XCTAssertThrowsError(try NetworkNamespace.run(in: "ftcp-hub") { try NetfilterQueue.open(queue: queueNumber) }) {
            error in
            let failure = error as? NetfilterQueueError
            XCTAssertEqual(failure?.code, .queueBusy, "\(error)")
            XCTAssertTrue(failure?.description.contains("another process bound to queue 200") ?? false, "\(error)")
        }

        // Client → primary UDP to port 9000 goes through queue 200 (in the lab's per-host chain).
        _ = try lab.foreground(
            "hub",
            "iptables",
            [
                "iptables", "-w", "5", "-t", "mangle", "-A", "FTCP-PRE-client",
                "-p", "udp", "--dport", "9000", "-j", "NFQUEUE", "--queue-num", String(queueNumber),
            ]
        )
        let capture = try lab.startCapture(on: "primary", filter: "udp and dst port 9000")
        _ = try lab.foreground(
            "client",
            "udp-send",
            [
                lab.labtool, "udp-send", "--to", "10.80.0.1:9000", "--count", "10", "--interval-us", "1000",
                "--run-id", "11", "--timeout-s", "10",
            ]
        )

        var packets: [NetfilterQueue.Packet] = []
        let deadline = ContinuousClock.now + .seconds(3)
        while packets.count < 10, ContinuousClock.now < deadline {
            packets += try queue.receive(maxPackets: 16, timeout: .milliseconds(100))
        }
        XCTAssertEqual(packets.count, 10, "the queue did not deliver the 10 datagrams")
        func sequence(_ packet: NetfilterQueue.Packet) -> UInt32? {
            let ip = packet.payload
            guard ip.count >= 20 else { return nil }
            let udp = Int(ip[0] & 0x0f) * 4
            guard ip.count >= udp + 20 else { return nil }
            return ip[(udp + 16)..<(udp + 20)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        for packet in packets {
            XCTAssertEqual(packet.hardwareProtocol, 0x0800)
            XCTAssertEqual(packet.hook, 0, "queued from PREROUTING")
            XCTAssertEqual(packet.originalLength, packet.payload.count)
        }

        // Verdicts in reverse order of arrival: odd numbers dropped, even ones accepted with the
        // run id rewritten to 77 (UDP checksum set to 0, "none", which IPv4 allows) and a mark.
        var verdicts: [NetfilterQueue.VerdictRequest] = []
        for packet in packets.reversed() {
            guard let number = sequence(packet) else { continue }
            if number % 2 == 1 {
                verdicts.append(.init(id: packet.id, .drop))
            } else {
                var bytes = packet.payload
                let udp = Int(bytes[0] & 0x0f) * 4
                bytes[udp + 6] = 0
                bytes[udp + 7] = 0
                bytes[(udp + 12)..<(udp + 16)] = [0, 0, 0, 77]
                verdicts.append(.init(id: packet.id, .accept, mark: 0x42, replacementPayload: bytes))
            }
        }
        for verdict in verdicts {
            try queue.setVerdict(
                id: verdict.id,
                verdict.verdict,
                mark: verdict.mark,
                replacementPayload: verdict.replacementPayload
            )
        }

        // A second verdict for a packet the kernel no longer holds comes back as an error.
        if let first = packets.first {
            try queue.setVerdict(id: first.id, .accept)
            XCTAssertThrowsError(try queue.receive(maxPackets: 1, timeout: .milliseconds(500))) { error in
                XCTAssertEqual((error as? NetfilterQueueError)?.code, .unknownPacketID, "\(error)")
            }
            XCTAssertEqual(queue.rejectedVerdicts, 1)
        }

        Thread.sleep(forTimeInterval: 0.2)
        let seen = try capture.finish().ipv4Packets.compactMap { packet -> (run: UInt32, number: UInt32)? in
            let payload = Array(packet.capturedPayload)
            guard payload.count >= 12, payload[0..<4] == [0x46, 0x54, 0x43, 0x50] else { return nil }
            return (
                payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }, payload[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
            )
        }
        XCTAssertEqual(
            seen.map(\.number),
            [8, 6, 4, 2, 0],
            "the primary should see the even datagrams, in verdict order"
        )
        XCTAssertEqual(Set(seen.map(\.run)), [77], "the replacement payloads did not reach the primary")
        try queue.close()
    }
}
