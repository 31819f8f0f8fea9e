import FTCPWire
import Testing

/// A super-segment queued whole (NFQUEUE with GSO) is cut into segments that fit
/// the path, as the kernel's own segmentation would cut it.
@Suite("Splitting a super-segment")
struct SegmentSplittingTests {
    static func superSegment(
        seq: UInt32 = 1000,
        length: Int,
        flags: TCPFlags = [.ack, .psh, .fin],
        urgentPointer: UInt16 = 0
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: IPv4Address(10, 80, 0, 2),
            destination: IPv4Address(10, 80, 0, 10),
            sourcePort: 9999,
            destinationPort: 40000,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(500),
            flags: flags,
            window: 300,
            urgentPointer: urgentPointer,
            options: [.noOperation, .noOperation, .timestamps(value: 9, echoReply: 4)],
            payload: (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        )
    }

    @Test(
        "2,500 bytes with FIN at MSS 1,012 (12 option bytes): pieces of 1,000, 1,000, 500; FIN and PSH on the last only"
    )
    func piecesFitTheMSS() throws {
        let whole = Self.superSegment(length: 2500)
        let pieces = whole.split(maximumSegmentSize: 1012)
        #expect(pieces.map(\.payload.count) == [1000, 1000, 500])
        #expect(pieces.map(\.sequenceNumber.rawValue) == [1000, 2000, 3000])
        #expect(pieces.map(\.flags) == [[.ack], [.ack], [.ack, .psh, .fin]])
        #expect(pieces.flatMap(\.payload) == whole.payload)
        #expect(
            pieces.allSatisfy {
                $0.acknowledgmentNumber.rawValue == 500 && $0.window == 300 && $0.options == whole.options
            }
        )
        // The pieces cover exactly the sequence space of the whole, FIN included.
        #expect(pieces.reduce(UInt32(0)) { $0 + $1.sequenceLength } == whole.sequenceLength)
        for piece in pieces { #expect(try piece.build().count == 20 + 32 + piece.payload.count) }
    }

    @Test(
        "a SYN-ACK with 250 bytes (Fast Open) cut at 100: the SYN and its options on the first piece, the rest one further"
    )
    func synWithData() {
        var whole = Self.superSegment(length: 250, flags: [.syn, .ack])
        whole.options = [
            .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 9, echoReply: 4), .windowScale(7),
        ]
        let pieces = whole.split(maximumPayload: 100)
        #expect(pieces.map(\.flags) == [[.syn, .ack], [.ack], [.ack]])
        // The SYN is at 1000 and its first byte at 1001: bytes 100–199 of the payload are at 1101.
        #expect(pieces.map(\.sequenceNumber.rawValue) == [1000, 1101, 1201])
        #expect(pieces[0].options == whole.options)
        #expect(pieces.dropFirst().allSatisfy { $0.options == [.timestamps(value: 9, echoReply: 4)] })
        #expect(pieces.flatMap(\.payload) == whole.payload)
        #expect(pieces.reduce(UInt32(0)) { $0 + $1.sequenceLength } == whole.sequenceLength)
    }

    @Test("a segment that fits, and a bare ACK, stay as they are")
    func fittingSegmentsStayWhole() {
        let small = Self.superSegment(length: 1000)
        #expect(small.split(maximumPayload: 1000) == [small])
        let ack = Self.superSegment(length: 0, flags: [.ack])
        #expect(ack.split(maximumPayload: 1) == [ack])
    }

    @Test("CWR stays on the first piece; URG on the pieces the urgent pointer still points beyond")
    func congestionAndUrgentFlags() {
        let whole = Self.superSegment(length: 300, flags: [.ack, .cwr, .urg], urgentPointer: 150)
        let pieces = whole.split(maximumPayload: 100)
        #expect(pieces.map(\.flags) == [[.ack, .cwr, .urg], [.ack, .urg], [.ack]])
        #expect(pieces.map(\.urgentPointer) == [150, 50, 0])
    }

    @Test("a limit below one byte is taken as one")
    func degenerateLimit() {
        let pieces = Self.superSegment(length: 3, flags: [.ack]).split(maximumPayload: 0)
        #expect(pieces.map(\.payload.count) == [1, 1, 1])
    }
}
