import FTCPLinux
import Foundation
import XCTest

/// Drives ``NetfilterQueue`` against the real kernel in the lab's hub namespace: verdicts out of
/// order, drop, accept with a replacement payload and a mark, a replacement rewritten where the
/// kernel wrote it, and a rejected double verdict.
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

        // A packet's bytes are valid until the next receive: kept here as copies.
        var packets: [(packet: NetfilterQueue.Packet, bytes: [UInt8])] = []
        let deadline = ContinuousClock.now + .seconds(3)
        while packets.count < 10, ContinuousClock.now < deadline {
            packets += try queue.receive(maxPackets: 16, timeout: .milliseconds(100)).map { ($0, $0.payload) }
        }
        XCTAssertEqual(packets.count, 10, "the queue did not deliver the 10 datagrams")
        func sequence(_ ip: [UInt8]) -> UInt32? {
            guard ip.count >= 20 else { return nil }
            let udp = Int(ip[0] & 0x0f) * 4
            guard ip.count >= udp + 20 else { return nil }
            return ip[(udp + 16)..<(udp + 20)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        for (packet, bytes) in packets {
            XCTAssertEqual(packet.hardwareProtocol, 0x0800)
            XCTAssertEqual(packet.hook, 0, "queued from PREROUTING")
            XCTAssertEqual(packet.originalLength, bytes.count)
        }

        // Verdicts in reverse order of arrival: odd numbers dropped, even ones accepted with the
        // run id rewritten to 77 (UDP checksum set to 0, "none", which IPv4 allows) and a mark.
        var verdicts: [NetfilterQueue.VerdictRequest] = []
        for (packet, original) in packets.reversed() {
            guard let number = sequence(original) else { continue }
            if number % 2 == 1 {
                verdicts.append(.init(id: packet.id, .drop))
            } else {
                var bytes = original
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
        if let first = packets.first?.packet {
            try queue.setVerdict(id: first.id, .accept)
            XCTAssertThrowsError(try queue.receive(maxPackets: 1, timeout: .milliseconds(500))) { error in
                XCTAssertEqual((error as? NetfilterQueueError)?.code, .unknownPacketID, "\(error)")
            }
            XCTAssertEqual(queue.rejectedVerdicts, 1)
        }

        // Rewritten where the kernel wrote them and named as the replacement, no copy: each
        // batch's verdicts go before the next receive, while its views are valid.
        _ = try lab.foreground(
            "client",
            "udp-send",
            [
                lab.labtool, "udp-send", "--to", "10.80.0.1:9000", "--count", "4", "--interval-us", "1000",
                "--run-id", "12", "--timeout-s", "10",
            ]
        )
        var inPlace = 0
        let inPlaceDeadline = ContinuousClock.now + .seconds(3)
        while inPlace < 4, ContinuousClock.now < inPlaceDeadline {
            let batch = try queue.receive(maxPackets: 16, timeout: .milliseconds(100))
            inPlace += batch.count
            try queue.setVerdicts(
                batch.map { packet in
                    let udp = Int(packet.bytes[0] & 0x0f) * 4
                    packet.bytes[udp + 6] = 0
                    packet.bytes[udp + 7] = 0
                    packet.bytes[udp + 15] = 78
                    return .init(id: packet.id, .accept, replacement: UnsafeRawBufferPointer(packet.bytes))
                }
            )
        }
        XCTAssertEqual(inPlace, 4, "the queue did not deliver the 4 datagrams")

        Thread.sleep(forTimeInterval: 0.2)
        let seen = try capture.finish().ipv4Packets.compactMap { packet -> (run: UInt32, number: UInt32)? in
            let payload = Array(packet.capturedPayload)
            guard payload.count >= 12, payload[0..<4] == [0x46, 0x54, 0x43, 0x50] else { return nil }
            return (
                payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }, payload[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
            )
        }
        XCTAssertEqual(
            seen.filter { $0.run != 78 }.map(\.number),
            [8, 6, 4, 2, 0],
            "the primary should see the even datagrams, in verdict order"
        )
        XCTAssertEqual(Set(seen.map(\.run)), [77, 78], "the replacement payloads did not reach the primary")
        XCTAssertEqual(seen.filter { $0.run == 78 }.map(\.number), [0, 1, 2, 3], "the in-place rewrites")
        try queue.close()
    }
}
