import Testing

@testable import FTCPReplication

@Suite("Relaying a burst in few datagrams")
struct RelayBundlerTests {
    static func packet(_ length: Int) -> [UInt8] { [UInt8](repeating: 0x45, count: length) }

    static func digested(pieces: Int) -> DigestedSegment {
        DigestedSegment(
            header: packet(52),
            payloadLength: UInt32(pieces * 1_000),
            pieceLength: 1_000,
            digests: [UInt8](repeating: 7, count: pieces * DigestedSegment.digestLength)
        )
    }

    @Test("packets share a datagram up to the limit; the one that would pass it starts the next")
    func bundles() throws {
        var bundler = RelayBundler(maximumDatagramBytes: 1_472)
        let size = 600
        #expect(bundler.add(Self.packet(size)).isEmpty)
        #expect(bundler.add(Self.packet(size)).isEmpty)
        let third = bundler.add(Self.packet(size))
        let full = try #require(third.first)
        #expect(third.count == 1)
        guard case let .segments(packets) = full else {
            Issue.record("expected a segments message, got \(full)")
            return
        }
        #expect(packets.count == 2)
        #expect(
            ReplicationSealer.segmentsDatagramLength(packetCost: 2 * ReplicationSealer.segmentsCost(ofPacket: size))
                <= 1_472
        )
        #expect(bundler.flushAll() == [.segment(packet: Self.packet(size))], "one left: a segment message")
        #expect(bundler.flushAll().isEmpty)
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
        #expect(bundler.add(Self.packet(40)).isEmpty)
        #expect(bundler.add(Self.packet(40)) == [.segment(packet: Self.packet(40))])
        #expect(bundler.flushAll() == [.segment(packet: Self.packet(40))])
    }

    @Test("digested segments bundle in digests messages, in the kernel's order with whole packets")
    func digests() throws {
        var bundler = RelayBundler(maximumDatagramBytes: 1_472)
        #expect(bundler.add(Self.packet(100)).isEmpty)
        // A digested segment after a whole packet: the packet's message goes first.
        #expect(bundler.add(digested: Self.digested(pieces: 10)) == [.segment(packet: Self.packet(100))])
        #expect(bundler.add(digested: Self.digested(pieces: 10)).isEmpty)
        // The most pieces one segment may carry still fits a datagram alone, with the longest header.
        let most = bundler.maximumDigestsPerSegment
        var longest = Self.digested(pieces: most)
        longest.header = Self.packet(120)
        #expect(ReplicationSealer.digestsDatagramLength([longest]) <= 1_472)
        #expect(ReplicationSealer.digestsDatagramLength([Self.digested(pieces: most + 8)]) > 1_472)
        // It does not fit beside the two held: they go first.
        let sent = bundler.add(digested: longest)
        #expect(sent == [.digests(segments: [Self.digested(pieces: 10), Self.digested(pieces: 10)])])
        #expect(bundler.add(Self.packet(40)) == [.digests(segments: [longest])])
        #expect(bundler.flushAll() == [.segment(packet: Self.packet(40))])
    }
}
