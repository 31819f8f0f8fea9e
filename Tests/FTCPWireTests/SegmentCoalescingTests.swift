import FTCPWire
import Testing

/// The primary's merged data leaves as super-segments the kernel cuts up again:
/// what may be joined, and what the joined segment says.
@Suite("Coalescing segments for segmentation offload")
struct SegmentCoalescingTests {
    static let server = IPv4Address(10, 80, 0, 1)
    static let client = IPv4Address(10, 80, 0, 10)

    static func data(
        seq: UInt32,
        ack: UInt32 = 500,
        length: Int,
        flags: TCPFlags = [.ack],
        window: UInt16 = 100,
        tsval: UInt32 = 7,
        port: UInt16 = 40000
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: server,
            destination: client,
            sourcePort: 9999,
            destinationPort: port,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack),
            flags: flags,
            window: window,
            options: [.noOperation, .noOperation, .timestamps(value: tsval, echoReply: 3)],
            payload: (0..<length).map { UInt8(truncatingIfNeeded: Int(seq) + $0) }
        )
    }

    @Test("three full segments and a short one become one super-segment carrying the last one's ACK, window and TSval")
    func runOfFullSegments() {
        let segments = [
            Self.data(seq: 1000, ack: 500, length: 100, window: 100, tsval: 7),
            Self.data(seq: 1100, ack: 500, length: 100, window: 100, tsval: 7),
            Self.data(seq: 1200, ack: 510, length: 100, window: 120, tsval: 8),
            Self.data(seq: 1300, ack: 510, length: 40, flags: [.ack, .psh], window: 120, tsval: 8),
        ]
        let packets = SegmentCoalescing.coalesce(segments)
        #expect(packets.count == 1)
        let joined = packets[0]
        #expect(joined.segmentSize == 100)
        #expect(joined.segmentCount == 4)
        #expect(joined.fields.sequenceNumber.rawValue == 1000)
        #expect(joined.fields.payload == segments.flatMap(\.payload))
        #expect(joined.fields.acknowledgmentNumber.rawValue == 510)
        #expect(joined.fields.window == 120)
        #expect(joined.fields.options == segments[3].options)
        #expect(joined.fields.flags == [.ack, .psh])
    }

    @Test("a lone segment goes out as it is")
    func loneSegment() {
        let segment = Self.data(seq: 1000, length: 100)
        #expect(SegmentCoalescing.coalesce([segment]) == [.init(fields: segment, segmentSize: nil, segmentCount: 1)])
    }

    @Test("a gap in sequence numbers, a short segment in the middle, a FIN or a pure ACK each end the run")
    func runBreakers() {
        let gap = SegmentCoalescing.coalesce([Self.data(seq: 1000, length: 100), Self.data(seq: 1101, length: 100)])
        #expect(gap.map(\.segmentCount) == [1, 1])

        let shortFirst = SegmentCoalescing.coalesce([
            Self.data(seq: 1000, length: 100), Self.data(seq: 1100, length: 60), Self.data(seq: 1160, length: 100),
        ])
        #expect(shortFirst.map(\.segmentCount) == [2, 1])
        #expect(shortFirst.map(\.fields.sequenceNumber.rawValue) == [1000, 1160])

        var fin = Self.data(seq: 1100, length: 100)
        fin.flags = [.ack, .fin]
        #expect(SegmentCoalescing.coalesce([Self.data(seq: 1000, length: 100), fin]).map(\.segmentCount) == [1, 1])

        let pureAck = Self.data(seq: 1100, length: 0)
        let afterAck = SegmentCoalescing.coalesce([
            Self.data(seq: 1000, length: 100), pureAck, Self.data(seq: 1100, length: 100),
        ])
        #expect(afterAck.map(\.segmentCount) == [1, 1, 1])
    }

    @Test("segments of two connections are never joined, and each keeps its order")
    func twoConnections() {
        let packets = SegmentCoalescing.coalesce([
            Self.data(seq: 1000, length: 100, port: 40000), Self.data(seq: 1100, length: 100, port: 40000),
            Self.data(seq: 1100, length: 100, port: 40002), Self.data(seq: 1200, length: 100, port: 40000),
        ])
        #expect(packets.map(\.fields.destinationPort) == [40000, 40002, 40000])
        #expect(packets.map(\.segmentCount) == [2, 1, 1])
    }

    @Test("a segment with a longer option block (SACK) does not join: every piece must fit the same size")
    func differentOptionLength() {
        var sack = Self.data(seq: 1100, length: 100)
        sack.options += [
            .noOperation, .noOperation, .sack([SACKBlock(left: SequenceNumber(600), right: SequenceNumber(700))]),
        ]
        #expect(SegmentCoalescing.coalesce([Self.data(seq: 1000, length: 100), sack]).map(\.segmentCount) == [1, 1])
    }

    @Test("a run stops below the largest IPv4 packet")
    func sizeBound() {
        let segments = (0..<50).map { Self.data(seq: 1000 + UInt32($0) * 1448, length: 1448) }
        let packets = SegmentCoalescing.coalesce(segments)
        #expect(packets.map(\.segmentCount) == [45, 5])
        #expect(packets.allSatisfy { $0.fields.totalLength <= 65_535 })
        #expect(packets.flatMap(\.fields.payload) == segments.flatMap(\.payload))
    }

    @Test(
        "cut again without the offload, a super-segment gives back the bytes at their sequence numbers, PSH on the last"
    )
    func piecesWithoutOffload() {
        let segments = (0..<4).map {
            Self.data(seq: 1000 + UInt32($0) * 100, length: $0 == 3 ? 30 : 100, flags: $0 == 3 ? [.ack, .psh] : [.ack])
        }
        let joined = SegmentCoalescing.coalesce(segments)
        #expect(joined.count == 1)
        let pieces = joined[0].pieces
        #expect(pieces.map(\.sequenceNumber.rawValue) == [1000, 1100, 1200, 1300])
        #expect(pieces.map(\.payload) == segments.map(\.payload))
        #expect(pieces.map(\.flags) == [[.ack], [.ack], [.ack], [.ack, .psh]])
    }

    @Test("the runs name the same packets coalesce joins, without joining a byte; at most maximumSegments each")
    func runsAsPlaces() {
        let segments =
            (0..<5).map { Self.data(seq: 1000 + UInt32($0) * 100, length: 100) }
            + [Self.data(seq: 1500, length: 0)]
            + (0..<3).map { Self.data(seq: 1500 + UInt32($0) * 7, length: 7) }
        let runs = SegmentCoalescing.runs(segments)
        #expect(runs.map(\.segments) == [0..<5, 5..<6, 6..<9])
        #expect(runs.map(\.segmentSize) == [100, nil, 7])
        #expect(runs.map(\.payloadLength) == [500, 0, 21])
        let packets = SegmentCoalescing.coalesce(segments)
        for (run, packet) in zip(runs, packets) {
            var header = packet.fields
            header.payload = []
            #expect(SegmentCoalescing.header(of: run, in: segments) == header)
        }
        #expect(
            SegmentCoalescing.runs(segments, maximumSegments: 2).map(\.segments) == [
                0..<2, 2..<4, 4..<5, 5..<6, 6..<8, 8..<9,
            ]
        )
    }

    @Test(
        "headers built apart, the TCP checksum summed over the pieces where they lie: the same bytes as the joined packet built whole",
        arguments: [100, 7, 1]
    )
    func gatheredEqualsJoined(size: Int) throws {
        let segments = (0..<5).map {
            Self.data(seq: 1000 + UInt32($0 * size), ack: 500 + UInt32($0), length: $0 == 4 ? size / 2 + 1 : size)
        }
        let runs = SegmentCoalescing.runs(segments)
        try #require(runs.count == 1)
        let joined = try SegmentCoalescing.coalesce(segments)[0].fields.build()
        var headers = [UInt8](repeating: 0xEE, count: 60 + 40)
        let gathered: [UInt8] = try headers.withUnsafeMutableBytes { buffer in
            let header = SegmentCoalescing.header(of: runs[0], in: segments)
            let length = try header.buildHeaders(into: buffer, payloadLength: runs[0].payloadLength)
            let built = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
            let payloads = segments.map(\.payload)
            payloads[0].withUnsafeBytes { p0 in
                payloads[1].withUnsafeBytes { p1 in
                    payloads[2].withUnsafeBytes { p2 in
                        payloads[3].withUnsafeBytes { p3 in
                            payloads[4].withUnsafeBytes { p4 in
                                GatheredChecksum.store(headers: built, payload: [p0, p1, p2, p3, p4])
                            }
                        }
                    }
                }
            }
            return Array(built) + payloads.flatMap { $0 }
        }
        #expect(gathered == joined)
    }
}
