import FTCPWire
import Testing

@testable import FTCPBridge

/// What the secondary relays as digests (`--relay digests`): a kernel's first sending of new
/// bytes, in pieces shorter than a segment; everything else whole.
@Suite("Secondary bridge: digests")
struct SecondaryDigestTests {
    typealias S = PrimaryScenario
    var bridge = {
        var bridge = SecondaryBridge(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                relaysDigests: true
            )
        )
        bridge.primaryReadsDigests = true
        return bridge
    }()

    /// Feeds a kernel segment; returns whether it was digestible just before, and the relays.
    mutating func kernel(_ fields: TCPPacketFields, maximumPieces: Int = 100) throws -> (
        digestible: Bool, relays: [DigestedRelay]
    ) {
        var bytes = try fields.build()
        let bridge = bridge
        var copy = bridge
        let result = try bytes.withUnsafeMutableBytes { buffer in
            let packet = try TCPPacket(validating: buffer)
            let digestible = copy.isDigestible(packet)
            #expect(copy.ownKernelSegment(packet, now: .zero) == .relayToPrimary)
            let relays =
                digestible ? copy.digestedRelay(packet, digester: PayloadDigest.fnv, maximumPieces: maximumPieces) : []
            return (digestible, relays)
        }
        self.bridge = copy
        return result
    }

    mutating func open() throws {
        var syn = try S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(576)]).build()
        _ = try syn.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(try !kernel(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack])).digestible)
    }

    @Test("new bytes are digested in pieces of the client's MSS less 40; a retransmission goes whole")
    mutating func newBytesOnly() throws {
        try open()
        let first = try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array(repeating: 7, count: 1200)))
        #expect(first.digestible)
        let relay = try #require(first.relays.first)
        #expect(first.relays.count == 1)
        #expect(relay.pieceLength == 536)
        #expect(relay.payloadLength == 1200 && relay.digests.count == 3)
        let bytes = [UInt8](repeating: 7, count: 536)
        #expect(relay.digests[0] == bytes.withUnsafeBytes { PayloadDigest.fnv($0) })
        let header = try TCPPacketFields(parsing: relay.header)
        #expect(header.payload.isEmpty && header.sequenceNumber == SequenceNumber(1))
        // The kernel sends bytes 1..100 again: whole. Then new bytes from 1201: digested again.
        #expect(
            try !kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array(repeating: 7, count: 100)))
                .digestible
        )
        #expect(try kernel(S.fromServer(.secondary, seq: 1201, ack: 1001, payload: [1, 2])).digestible)
    }

    @Test("a segment with more pieces than a datagram holds becomes several, the FIN on the last")
    mutating func cutIntoSeveral() throws {
        try open()
        let result = try kernel(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                flags: [.fin, .psh, .ack],
                payload: Array(repeating: 1, count: 2000)
            ),
            maximumPieces: 2
        )
        #expect(result.relays.map(\.payloadLength) == [1072, 928])
        let headers = try result.relays.map { try TCPPacketFields(parsing: $0.header) }
        #expect(headers.map(\.sequenceNumber) == [SequenceNumber(1), SequenceNumber(1073)])
        #expect(headers.map { $0.flags.contains(.fin) } == [false, true])
    }

    @Test(
        "the primary asks for a connection whole: what the client has not acknowledged comes back, whole from then on"
    )
    mutating func relayWhole() throws {
        try open()
        _ = try kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array(repeating: 7, count: 300)))
        _ = try kernel(S.fromServer(.secondary, seq: 301, ack: 1001, payload: Array(repeating: 8, count: 300)))
        // The client acknowledges the first 300 bytes.
        var ack = try S.fromClient(seq: 1001, ack: 301).build()
        _ = try ack.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        let resent = bridge.relayWhole([S().key])
        #expect(try resent.map { try TCPPacketFields(parsing: $0).sequenceNumber } == [SequenceNumber(301)])
        #expect(try !kernel(S.fromServer(.secondary, seq: 601, ack: 1001, payload: [1])).digestible)
        #expect(bridge.relayWhole([S().key]).isEmpty, "asked twice: nothing more")
    }

    @Test("ports with same-length tolerance, and bridges relaying bytes, digest nothing")
    func notDigested() throws {
        for configuration in [
            BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                divergencePolicy: DivergencePolicy(defaultTolerance: .sameLength),
                relaysDigests: true
            ),
            BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort]
            ),
        ] {
            var test = SecondaryDigestTests()
            test.bridge = SecondaryBridge(configuration: configuration)
            test.bridge.primaryReadsDigests = true
            var syn = try S.fromClient(seq: 1000, flags: [.syn]).build()
            _ = try syn.withUnsafeMutableBytes {
                try test.bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
            }
            _ = try test.kernel(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack]))
            #expect(try !test.kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: [1, 2, 3])).digestible)
        }
    }

    @Test(
        "a primary that has not said it reads digests (an older release, or none heard yet) gets bytes; once it says so, new bytes go as digests"
    )
    mutating func primaryOfAnOlderRelease() throws {
        bridge.primaryReadsDigests = false
        try open()
        #expect(
            try !kernel(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array(repeating: 7, count: 300)))
                .digestible
        )
        bridge.primaryReadsDigests = true
        #expect(
            try kernel(S.fromServer(.secondary, seq: 301, ack: 1001, payload: Array(repeating: 8, count: 300)))
                .digestible
        )
        bridge.primaryReadsDigests = false
        #expect(try !kernel(S.fromServer(.secondary, seq: 601, ack: 1001, payload: [1])).digestible)
    }
}
