import FTCPWire
import Testing

@testable import FTCPBridge

/// A node that took over and then serves as primary: the connections it inherited keep their
/// sockets on the node's own address (10.80.0.2) while clients know the service address.
@Suite("Inherited connections after a role swap")
struct InheritedConnectionsTests {
    typealias S = PrimaryScenario
    static let node = S.secondaryAddress
    static let inheritedKey = ConnectionKey(
        clientAddress: S.clientAddress,
        clientPort: S.clientPort,
        serverPort: S.serverPort
    )
    var inherited = InheritedConnections(
        serviceAddress: S.serviceAddress,
        nodeAddress: node,
        keys: [inheritedKey],
        now: .zero
    )

    private mutating func fromClient(_ fields: TCPPacketFields, at milliseconds: UInt64 = 0) throws -> (
        Bool, TCPPacketFields
    ) {
        var bytes = try fields.build()
        let changed = try bytes.withUnsafeMutableBytes {
            try inherited.clientSegment(TCPPacket(validating: $0), now: .milliseconds(milliseconds))
        }
        let valid = try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid }
        #expect(valid)
        return (changed, try TCPPacketFields(parsing: bytes))
    }

    private mutating func fromKernel(_ fields: TCPPacketFields) throws -> (Bool, TCPPacketFields) {
        var bytes = try fields.build()
        let changed = try bytes.withUnsafeMutableBytes {
            try inherited.kernelSegment(TCPPacket(validating: $0), now: .zero)
        }
        let valid = try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid }
        #expect(valid)
        return (changed, try TCPPacketFields(parsing: bytes))
    }

    @Test(
        "a new connection of a client whose session was inherited (FTP's passive data connection) is served from the node's address too; another client's is not"
    )
    mutating func adoptsRelatedConnections() throws {
        func adopt(_ fields: TCPPacketFields) throws -> Bool {
            var bytes = try fields.build()
            return try bytes.withUnsafeMutableBytes {
                try inherited.adoptRelated(TCPPacket(validating: $0), now: .zero)
            }
        }
        // The inherited client's SYN to passive port 30000 (its vsftpd listens on 10.80.0.2:30000).
        let passive = TCPPacketFields(
            source: S.clientAddress,
            destination: S.serviceAddress,
            sourcePort: 41_000,
            destinationPort: 30_000,
            sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(0),
            flags: [.syn],
            window: 1000,
            options: [],
            payload: []
        )
        #expect(try adopt(passive))
        let (changed, delivered) = try fromClient(passive)
        #expect(changed && delivered.destination == Self.node)
        #expect(inherited.adopted == 1 && inherited.count == 2)
        // Not a SYN, or another client: not adopted.
        var stranger = passive
        stranger.source = IPv4Address(10, 80, 0, 77)
        #expect(try !adopt(stranger))
        var notSYN = passive
        notSYN.sourcePort = 41_001
        notSYN.flags = [.ack]
        #expect(try !adopt(notSYN))
        // Once the connection taken over is gone, the adopted one vouches for nothing more: the
        // client's next connections are protected again.
        let (reset, _) = try fromClient(S.fromClient(seq: 5000, flags: [.rst]))
        #expect(reset && !inherited.contains(Self.inheritedKey))
        var later = passive
        later.sourcePort = 41_002
        #expect(try !adopt(later))
    }

    @Test(
        "client seq 5000 to the service address reaches the inherited socket on the node's address; its answer leaves from the service address"
    )
    mutating func translatesBothWays() throws {
        let (inChanged, delivered) = try fromClient(S.fromClient(seq: 5000, ack: 9000, payload: [1, 2, 3]))
        #expect(inChanged)
        #expect(delivered.destination == Self.node)
        #expect(
            delivered.sequenceNumber == SequenceNumber(5000) && delivered.acknowledgmentNumber == SequenceNumber(9000)
        )
        #expect(delivered.payload == [1, 2, 3])

        let (outChanged, sent) = try fromKernel(S.fromServer(.secondary, seq: 9000, ack: 5003, payload: [4]))
        #expect(outChanged)
        #expect(sent.source == S.serviceAddress)
        #expect(sent.sequenceNumber == SequenceNumber(9000))
        #expect(inherited.translatedFromClients == 1 && inherited.translatedFromKernel == 1)
    }

    @Test("a connection opened after the swap (another client port) is left to the merge")
    mutating func leavesNewConnectionsAlone() throws {
        let (inChanged, delivered) = try fromClient(S.fromClient(seq: 1, flags: [.syn], port: 41_000))
        #expect(!inChanged)
        #expect(delivered.destination == S.serviceAddress)
        let (outChanged, _) = try fromKernel(S.fromServer(.primary, seq: 1, ack: 2, port: 41_000))
        #expect(!outChanged)
    }

    @Test("a reset ends the translation after carrying it; an idle connection expires")
    mutating func resetAndExpiry() throws {
        let (changed, _) = try fromClient(S.fromClient(seq: 5000, flags: [.rst]))
        #expect(changed)
        #expect(inherited.isEmpty && inherited.forgotten == 1)

        var idle = InheritedConnections(
            serviceAddress: S.serviceAddress,
            nodeAddress: Self.node,
            keys: [Self.inheritedKey],
            now: .zero
        )
        idle.expire(now: .milliseconds(999), idleMilliseconds: 1000)
        #expect(idle.count == 1)
        idle.expire(now: .milliseconds(1000), idleMilliseconds: 1000)
        #expect(idle.isEmpty)
    }
}

extension InheritedConnectionsTests {
    @Test(
        "FIN from the client (seq 5000) and from the kernel (seq 9000): closing, no longer open, forgotten after the linger"
    )
    mutating func finBothWays() throws {
        _ = try fromClient(S.fromClient(seq: 5000, ack: 9000, flags: [.fin, .ack]))
        #expect(inherited.openCount == 1)
        _ = try fromKernel(S.fromServer(.secondary, seq: 9000, ack: 5001, flags: [.fin, .ack]))
        #expect(inherited.openCount == 0)
        #expect(inherited.count == 1, "still translated: the client's last ACK must reach the socket")
        let (changed, _) = try fromClient(S.fromClient(seq: 5001, ack: 9001), at: 0)
        #expect(changed)
        inherited.expire(
            now: .milliseconds(InheritedConnections.closingLingerMilliseconds - 1),
            idleMilliseconds: 7_200_000
        )
        #expect(inherited.count == 1)
        inherited.expire(
            now: .milliseconds(InheritedConnections.closingLingerMilliseconds),
            idleMilliseconds: 7_200_000
        )
        #expect(inherited.isEmpty)
    }
}
