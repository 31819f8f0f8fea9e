import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Secondary bridge (paper §3.1)")
struct SecondaryBridgeTests {
    typealias S = PrimaryScenario
    var bridge = SecondaryBridge(
        configuration: BridgeConfiguration(
            serviceAddress: S.serviceAddress,
            secondaryAddress: S.secondaryAddress,
            protectedPorts: [S.serverPort]
        )
    )

    @Test("a captured client segment to the primary is readdressed to the secondary with valid checksums")
    mutating func capture() throws {
        var bytes = try S.fromClient(seq: 7, ack: 9, payload: [1, 2, 3]).build()
        // A sender's checksum offload leaves only the pseudo-header sum in the field.
        bytes[36] = 0x12; bytes[37] = 0x34
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .inject)
        let fields = try TCPPacketFields(parsing: bytes)
        #expect(fields.destination == S.secondaryAddress)
        #expect(fields.source == S.clientAddress)
        #expect(fields.payload == [1, 2, 3])
        let valid = try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid }
        #expect(valid)
        #expect(bridge.counters.injected == 1)
    }

    @Test(
        "only a connection whose SYN was captured is tracked (and so inherited at a takeover); others are only injected"
    )
    mutating func tracksOnlyConnectionsItSawBegin() throws {
        // A connection begun before this bridge started: its segments reach the kernel (which
        // answers as it will), but no state is kept and a takeover does not inherit it.
        var midway = try S.fromClient(seq: 5000, ack: 77, payload: [1], port: 41_000).build()
        let verdict = try midway.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .inject)
        #expect(bridge.connections.isEmpty)
        var syn = try S.fromClient(seq: 1000, flags: [.syn]).build()
        _ = try syn.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(bridge.connections.map(\.key.clientPort) == [S.clientPort])
        #expect(
            bridge.promote() == [
                ConnectionKey(clientAddress: S.clientAddress, clientPort: S.clientPort, serverPort: S.serverPort)
            ]
        )
    }

    @Test("a connection the primary released (diverged, or served alone) is forgotten and not inherited")
    mutating func releasedIsNotInherited() throws {
        var syn = try S.fromClient(seq: 1000, flags: [.syn]).build()
        _ = try syn.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        var data = try S.fromServer(.secondary, seq: 1, ack: 1001, payload: [1, 2, 3]).build()
        _ = try data.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(bridge.retainedBytes > 0)
        bridge.release([
            ConnectionKey(clientAddress: S.clientAddress, clientPort: S.clientPort, serverPort: S.serverPort)
        ])
        #expect(bridge.connections.isEmpty)
        #expect(bridge.retainedBytes == 0)
        #expect(bridge.promote().isEmpty)
        #expect(bridge.restartPackets().isEmpty)
    }

    @Test(
        "segments to other addresses or unprotected ports are ignored",
        arguments: [
            (IPv4Address(10, 80, 0, 99), UInt16(9999)), (IPv4Address(10, 80, 0, 1), UInt16(22)),
        ]
    )
    mutating func ignores(destination: IPv4Address, port: UInt16) throws {
        var fields = S.fromClient(seq: 1)
        fields.destination = destination
        fields.destinationPort = port
        var bytes = try fields.build()
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .ignore)
        #expect(try TCPPacketFields(parsing: bytes) == fields, "an ignored packet is not touched")
    }

    @Test(
        "a 5,000-byte super-segment of the kernel is relayed in pieces of at most 2,000 bytes, or cut to the client's MSS"
    )
    mutating func superSegmentRelayedInPieces() throws {
        var syn = try S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1460)]).build()
        _ = try syn.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 11) }
        var whole = try S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.ack, .psh], payload: data).build()
        let (bounded, atMSS) = try whole.withUnsafeMutableBytes { buffer in
            let view = try TCPPacket(validating: buffer)
            #expect(bridge.ownKernelSegment(view, now: .zero) == .relayToPrimary)
            return (
                bridge.relayPackets(view, maximumPacketBytes: 2000), bridge.relayPackets(view, maximumPacketBytes: nil)
            )
        }
        let boundedFields = try bounded.map { try TCPPacketFields(parsing: $0) }
        #expect(bounded.map(\.count) == [2000, 2000, 1120])
        #expect(boundedFields.map(\.sequenceNumber.rawValue) == [1, 1961, 3921])
        #expect(boundedFields.flatMap(\.payload) == data)
        let mssFields = try atMSS.map { try TCPPacketFields(parsing: $0) }
        #expect(mssFields.map(\.payload.count) == [1460, 1460, 1460, 620])
        #expect(mssFields.map { $0.flags.contains(.psh) } == [false, false, false, true])
        for var packet in bounded + atMSS {
            #expect(try packet.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid })
        }
        // A segment that fits is relayed as it is.
        var small = try S.fromServer(.secondary, seq: 1, ack: 1001, payload: [1, 2, 3]).build()
        let same = try small.withUnsafeMutableBytes {
            try bridge.relayPackets(TCPPacket(validating: $0), maximumPacketBytes: 2000)
        }
        #expect(same == [small])
    }

    @Test("every segment the secondary's kernel sends from a protected port goes to the primary, RSTs included")
    mutating func divert() throws {
        for flags: TCPFlags in [[.syn, .ack], [.ack], [.rst], [.fin, .ack]] {
            var bytes = try S.fromServer(.secondary, seq: 1, ack: 1, flags: flags).build()
            let verdict = try bytes.withUnsafeMutableBytes {
                try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero)
            }
            #expect(verdict == .relayToPrimary)
        }
        var other = S.fromServer(.secondary, seq: 1, ack: 1)
        other.sourcePort = 22
        var bytes = try other.build()
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(verdict == .pass)
    }
}

extension SecondaryBridgeTests {
    @Test(
        "at a takeover, a connection that closed before (FIN both ways) is inherited as closing, one reset is not inherited"
    )
    mutating func closedAndResetAtTakeover() throws {
        func captured(_ fields: TCPPacketFields) throws {
            var bytes = try fields.build()
            _ = try bytes.withUnsafeMutableBytes {
                try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
            }
        }
        func kernel(_ fields: TCPPacketFields) throws {
            var bytes = try fields.build()
            _ = try bytes.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
        }
        let closed = ConnectionKey(clientAddress: S.clientAddress, clientPort: 41_001, serverPort: S.serverPort)
        let reset = ConnectionKey(clientAddress: S.clientAddress, clientPort: 41_002, serverPort: S.serverPort)
        let open = ConnectionKey(clientAddress: S.clientAddress, clientPort: 41_003, serverPort: S.serverPort)
        for key in [closed, reset, open] { try captured(S.fromClient(seq: 1000, flags: [.syn], port: key.clientPort)) }
        try kernel(S.fromServer(.secondary, seq: 5000, ack: 1001, flags: [.fin, .ack], port: closed.clientPort))
        try captured(S.fromClient(seq: 1001, ack: 5001, flags: [.fin, .ack], port: closed.clientPort))
        try captured(S.fromClient(seq: 1001, flags: [.rst], port: reset.clientPort))
        #expect(bridge.promote() == [closed, open])
        #expect(bridge.inheritedClosing == [closed])
    }
}
