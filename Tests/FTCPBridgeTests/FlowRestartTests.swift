import FTCPWire
import Testing

@testable import FTCPBridge

/// The secondary takes over and restarts the flow at once (FT-TCP §6's
/// retransmission gap): what its kernel sent to the dead primary, and the
/// client never received, goes out again from the service address.
@Suite("Flow restart at the takeover")
struct FlowRestartTests {
    typealias S = PrimaryScenario
    var bridge: SecondaryBridge

    init() {
        bridge = SecondaryBridge(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort]
            )
        )
    }

    mutating func client(_ fields: TCPPacketFields) throws {
        var bytes = try fields.build()
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .inject)
    }

    mutating func kernel(_ fields: TCPPacketFields) throws {
        var bytes = try fields.build()
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .relayToPrimary)
    }

    mutating func takeOver() throws -> [TCPPacketFields] {
        bridge.promote()
        return try bridge.restartPackets().map { try TCPPacketFields(parsing: $0) }
    }

    static func ts(_ value: UInt32, _ echo: UInt32) -> [TCPOption] {
        [.noOperation, .noOperation, .timestamps(value: value, echoReply: echo)]
    }

    /// C: SYN 1000; S: SYN-ACK 0/1001; C: ACK 1001/1.
    mutating func handshake() throws {
        try client(S.fromClient(seq: 1000, flags: [.syn], options: Self.ts(500, 0)))
        try kernel(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack], options: Self.ts(70, 500)))
        try client(S.fromClient(seq: 1001, ack: 1, options: Self.ts(501, 70)))
    }

    @Test("data the client never acknowledged is resent from the service address, then the latest ACK three times")
    mutating func resendUnacknowledged() throws {
        try handshake()
        // S sends bytes 1–30 in three segments; the primary merged only the first before dying.
        try kernel(
            S.fromServer(.secondary, seq: 1, ack: 1001, options: Self.ts(71, 501), payload: numberedBytes(1...10))
        )
        try kernel(
            S.fromServer(.secondary, seq: 11, ack: 1001, options: Self.ts(72, 501), payload: numberedBytes(11...20))
        )
        try kernel(
            S.fromServer(.secondary, seq: 21, ack: 1001, options: Self.ts(73, 501), payload: numberedBytes(21...30))
        )
        try client(S.fromClient(seq: 1001, ack: 11, options: Self.ts(502, 71), payload: numberedBytes(1...5)))
        // S's kernel acknowledges the client's five bytes and advertises a new window.
        try kernel(S.fromServer(.secondary, seq: 31, ack: 1006, window: 900, options: Self.ts(74, 502)))
        #expect(bridge.retainedBytes > 0)

        let restart = try takeOver()
        #expect(restart.map(\.sequenceNumber.rawValue) == [11, 21, 31, 31, 31])
        #expect(restart.allSatisfy { $0.source == S.serviceAddress && $0.destination == S.clientAddress })
        #expect(restart.allSatisfy { $0.acknowledgmentNumber == SequenceNumber(1006) && $0.window == 900 })
        #expect(restart[0].payload == numberedBytes(11...20))
        #expect(restart[1].payload == numberedBytes(21...30))
        #expect(restart[2...].allSatisfy { $0.payload.isEmpty && $0.flags == [.ack] })
        // The kernel's newest TSval, echoing the client's newest.
        #expect(restart.allSatisfy { $0.options.contains(.timestamps(value: 74, echoReply: 502)) })
        for packet in restart {
            var bytes = try packet.build()
            #expect(try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid })
        }
        #expect(bridge.counters.restartedConnections == 1)
        #expect(bridge.retainedBytes == 0, "copies are released once sent")
    }

    @Test(
        "a super-segment the kernel's queue handed over whole is resent in pieces that fit the client's MSS (600 here)"
    )
    mutating func superSegmentResentInPieces() throws {
        try client(S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(600)] + Self.ts(500, 0)))
        try kernel(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack], options: Self.ts(70, 500)))
        try client(S.fromClient(seq: 1001, ack: 1, options: Self.ts(501, 70)))
        #expect(
            bridge.clientMaximumSegmentSize(
                ConnectionKey(clientAddress: S.clientAddress, clientPort: S.clientPort, serverPort: S.serverPort)
            ) == 600
        )
        let data = (0..<1250).map { UInt8(truncatingIfNeeded: $0 &* 5) }
        try kernel(
            S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.ack, .psh], options: Self.ts(71, 501), payload: data)
        )
        let restart = try takeOver()
        // 600 bytes of MSS less 12 of timestamps: 588-byte pieces, then the three ACKs.
        #expect(restart.map(\.sequenceNumber.rawValue) == [1, 589, 1177, 1251, 1251, 1251])
        #expect(restart[0..<3].map(\.payload.count) == [588, 588, 74])
        #expect(restart[0..<3].flatMap(\.payload) == data)
        #expect(restart[0..<3].map { $0.flags.contains(.psh) } == [false, false, true])
        for packet in restart {
            var bytes = try packet.build()
            #expect(try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid })
        }
    }

    @Test("nothing outstanding: only the latest ACK, so a client that stopped sending learns how far the secondary got")
    mutating func uploadOnly() throws {
        try handshake()
        try client(S.fromClient(seq: 1001, ack: 1, payload: numberedBytes(1...100)))
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1101, window: 800))
        let restart = try takeOver()
        #expect(restart.count == 3)
        #expect(
            restart.allSatisfy {
                $0.sequenceNumber == SequenceNumber(1) && $0.acknowledgmentNumber == SequenceNumber(1101)
            }
        )
        #expect(restart.allSatisfy { $0.window == 800 && $0.payload.isEmpty })
    }

    @Test("the kernel's SACK blocks go out with the duplicate ACKs, and stale ones are stripped from resent data")
    mutating func sackBlocks() throws {
        try handshake()
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        // The client's bytes 1001–1100 were lost on the way to S; 1101–1200 arrived.
        try kernel(
            S.fromServer(
                .secondary,
                seq: 11,
                ack: 1001,
                options: [
                    .noOperation, .noOperation,
                    .sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1201))]),
                ]
            )
        )
        let restart = try takeOver()
        #expect(restart.count == 4)
        #expect(restart[0].payload == numberedBytes(1...10))
        #expect(!restart[0].options.contains { if case .sack = $0 { return true } else { return false } })
        #expect(
            restart[1...].allSatisfy {
                $0.options.contains(.sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1201))]))
            }
        )
    }

    @Test("cut off in the handshake: the SYN-ACK is resent, and no bare ACK follows it")
    mutating func duringHandshake() throws {
        try client(S.fromClient(seq: 1000, flags: [.syn], options: Self.ts(500, 0)))
        try kernel(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack], options: Self.ts(70, 500)))
        let restart = try takeOver()
        #expect(restart.count == 1)
        #expect(restart[0].flags == [.syn, .ack])
        #expect(
            restart[0].sequenceNumber == SequenceNumber(0) && restart[0].acknowledgmentNumber == SequenceNumber(1001)
        )
        #expect(restart[0].source == S.serviceAddress)
        #expect(restart[0].options.contains(.timestamps(value: 70, echoReply: 500)))
    }

    @Test("the client has seen a newer TSval from the primary's merge: the resent segments carry that one")
    mutating func pawsSafe() throws {
        try handshake()
        try kernel(
            S.fromServer(.secondary, seq: 1, ack: 1001, options: Self.ts(80, 501), payload: numberedBytes(1...10))
        )
        try client(S.fromClient(seq: 1001, ack: 1, options: Self.ts(503, 85)))
        let restart = try takeOver()
        #expect(restart.first?.options.contains(.timestamps(value: 85, echoReply: 503)) == true)
    }

    @Test("a kernel retransmission is not resent twice")
    mutating func retransmissionOnce() throws {
        try handshake()
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        let restart = try takeOver()
        #expect(restart.map(\.sequenceNumber.rawValue) == [1, 11, 11, 11])
    }

    @Test("a connection its kernel reset has nothing to restart")
    mutating func resetForgets() throws {
        try handshake()
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        try kernel(S.fromServer(.secondary, seq: 11, ack: 1001, flags: [.rst, .ack]))
        #expect(bridge.retainedBytes == 0)
        #expect(try takeOver().isEmpty)
    }

    @Test("the client reset the connection: nothing to restart")
    mutating func clientResetForgets() throws {
        try handshake()
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        try client(S.fromClient(seq: 1001, ack: 0, flags: [.rst]))
        #expect(bridge.retainedBytes == 0)
        #expect(try takeOver().isEmpty)
    }

    @Test("closed on both sides before the primary died: no restart packets, which the client would answer with RSTs")
    mutating func closedConnectionIsLeftAlone() throws {
        try handshake()
        // C: FIN 1001 (half-close); S: 10 bytes, FIN 11, acknowledging the client's FIN (1002).
        try client(S.fromClient(seq: 1001, ack: 1, flags: [.fin, .ack]))
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1002, payload: numberedBytes(1...10)))
        try kernel(S.fromServer(.secondary, seq: 11, ack: 1002, flags: [.fin, .ack]))
        // C acknowledges everything, FIN included: the connection is over.
        try client(S.fromClient(seq: 1002, ack: 12))
        #expect(try takeOver().isEmpty)
    }

    @Test("half-closed by the client, the server's FIN lost with the primary: the FIN is resent")
    mutating func halfClosedConnectionGetsItsFIN() throws {
        try handshake()
        try client(S.fromClient(seq: 1001, ack: 1, flags: [.fin, .ack]))
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1002, payload: numberedBytes(1...10)))
        try kernel(S.fromServer(.secondary, seq: 11, ack: 1002, flags: [.fin, .ack]))
        try client(S.fromClient(seq: 1002, ack: 11))
        let restart = try takeOver()
        #expect(restart.first?.sequenceNumber.rawValue == 11)
        #expect(restart.first?.flags.contains(.fin) == true)
        #expect(restart.map(\.acknowledgmentNumber.rawValue).allSatisfy { $0 == 1002 })
    }

    @Test("past the bound nothing more is kept, and it is counted")
    mutating func bounded() throws {
        bridge = SecondaryBridge(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                maximumRetainedBytes: 200
            )
        )
        try handshake()
        for index in 0..<5 {
            let start = UInt32(index * 100 + 1)
            try kernel(S.fromServer(.secondary, seq: start, ack: 1001, payload: numberedBytes(start...(start + 99))))
        }
        #expect(bridge.retainedBytes <= 200)
        #expect(bridge.counters.notRetained >= 3)
        let restart = try takeOver()
        #expect(restart.first?.sequenceNumber == SequenceNumber(1), "the oldest bytes are the ones kept")
    }

    @Test("before the takeover nothing is sent")
    mutating func notBeforePromotion() throws {
        try handshake()
        try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        #expect(bridge.restartPackets().isEmpty)
    }
}
