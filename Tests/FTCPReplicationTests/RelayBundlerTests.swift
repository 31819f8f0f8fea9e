import Testing

@testable import FTCPReplication

@Suite("Relaying a burst in few datagrams")
struct RelayBundlerTests {
    static func packet(_ length: Int) -> [UInt8] { [UInt8](repeating: 0x45, count: length) }

    @Test("packets share a datagram up to the limit; the one that would pass it starts the next")
    func bundles() throws {
        var bundler = RelayBundler(maximumDatagramBytes: 1_472)
        let size = 600
        #expect(bundler.add(Self.packet(size)) == nil)
        #expect(bundler.add(Self.packet(size)) == nil)
        let third = bundler.add(Self.packet(size))
        let full = try #require(third)
        guard case let .segments(packets) = full else {
            Issue.record("expected a segments message, got \(full)")
            return
        }
        #expect(packets.count == 2)
        #expect(
            ReplicationSealer.segmentsDatagramLength(packetCost: 2 * ReplicationSealer.segmentsCost(ofPacket: size))
                <= 1_472
        )
        #expect(bundler.flush() == .segment(packet: Self.packet(size)), "one left: a segment message")
        #expect(bundler.flush() == nil)
    }

    @Test("the longest packet sent as it is fits one datagram of the limit on its own")
    func maximumPacket() throws {
        let bundler = RelayBundler(maximumDatagramBytes: 1_472)
        let longest = bundler.maximumPacketBytes
        #expect(
            ReplicationSealer.segmentsDatagramLength(packetCost: ReplicationSealer.segmentsCost(ofPacket: longest))
                == 1_472
        )
        #expect(RelayBundler(maximumDatagramBytes: 0).maximumPacketBytes == 1_500)
    }

    @Test("with bundling off (0) every packet goes alone")
    func unbundled() {
        var bundler = RelayBundler(maximumDatagramBytes: 0)
        #expect(bundler.add(Self.packet(40)) == nil)
        #expect(bundler.add(Self.packet(40)) == .segment(packet: Self.packet(40)))
        #expect(bundler.flush() == .segment(packet: Self.packet(40)))
    }
}
