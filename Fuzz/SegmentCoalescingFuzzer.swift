import FTCPWire
import Glibc

/// Fuzzes segment splitting and coalescing (`TCPPacketFields.split`, `SegmentCoalescing`): a
/// list of segments decoded from the input, mostly runs of consecutive data segments of a few
/// connections, is coalesced, and every segment is split. Neither may lose, add, reorder or
/// move a byte: each super-segment cut as the offload would cut it gives back exactly the
/// segments it joined, and the pieces of a split segment put together give back the segment.
///
/// Input: a byte for the piece size, a byte for the coalescing limit, then per segment a few
/// bytes (connection, flags, payload length, sequence jump, acknowledgment and window steps,
/// options); see `decodeSegment`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegmentCoalescing(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pieceSize = input.pick([1448, 1460, 536, 1, 100, 1000, 65_455, 8948]) + Int(input.byte() % 4)
    let limit = input.pick([SegmentCoalescing.maximumPayload, 10_000, 3000, 1460, 1, 0, 65_535])
    var state = DecoderState()
    var segments: [TCPPacketFields] = []
    var bytes = 0
    while !input.isExhausted && segments.count < 128 && bytes < 300_000 {
        segments.append(decodeSegment(&input, pieceSize: pieceSize, state: &state))
        bytes += segments[segments.count - 1].payload.count
    }
    for segment in segments {
        checkSplit(segment, maximumPayload: Int(segment.window % 2000) - 5)
        checkSplit(segment, maximumPayload: pieceSize)
        guard pieceCount(segment, maximumPayload: pieceSize - segment.optionsLength) <= maximumPieces else { continue }
        let pieces = segment.split(maximumSegmentSize: pieceSize)
        require(pieces.allSatisfy { $0.payload.count <= max(1, pieceSize - segment.optionsLength) })
    }
    checkCoalescing(segments, maximumPayload: limit)
    checkCoalescing(segments, maximumPayload: SegmentCoalescing.maximumPayload)
    checkGathered(segments, maximumPayload: limit)
    return 0
}

/// Where each connection's next segment starts, and its latest acknowledgment and window.
private struct DecoderState {
    var next: [SequenceNumber] = [SequenceNumber(0xFFFF_F000), SequenceNumber(7), SequenceNumber(0x8000_0000)]
    var acknowledgment = SequenceNumber(1000)
    var window: UInt16 = 500
    var timestamp: UInt32 = 100
}

private let client = IPv4Address(10, 80, 0, 10)
private let otherClient = IPv4Address(10, 80, 0, 11)
private let service = IPv4Address(10, 80, 0, 1)

private func decodeSegment(_ input: inout FuzzInput, pieceSize: Int, state: inout DecoderState) -> TCPPacketFields {
    let shape = input.byte()
    let connection = Int(shape & 3) % 3
    let flags: TCPFlags =
        switch (shape >> 2) & 7 {
        case 0, 1, 2: [.ack]
        case 3: [.ack, .psh]
        case 4: [.ack, .fin]
        case 5: [.ack, .urg]
        case 6: [.ack, .cwr, .ece]
        default: TCPFlags(rawValue: input.byte())
        }
    let lengthChoice = input.byte()
    let payloadLength =
        switch lengthChoice >> 5 {
        case 0, 1, 2: pieceSize
        case 3: pieceSize - 1
        case 4: Int(lengthChoice & 31)
        case 5: 0
        case 6: pieceSize * Int(lengthChoice & 7 + 1)
        default: Int(input.uint16() % 3000)
        }
    var sequence = state.next[connection]
    let jump = input.byte()
    switch jump >> 6 {
    case 0, 1: break
    case 2: sequence = sequence + UInt32(jump & 63)
    default: sequence = sequence - UInt32(jump & 63)
    }
    let steps = input.byte()
    if steps & 1 != 0 { state.acknowledgment = state.acknowledgment + UInt32(steps >> 1) }
    if steps & 2 != 0 { state.window = state.window &+ UInt16(steps) }
    state.timestamp &+= 1
    var options: [TCPOption] = []
    let optionChoice = input.byte()
    if optionChoice & 1 != 0 {
        options += [.noOperation, .noOperation, .timestamps(value: state.timestamp, echoReply: 9)]
    }
    if optionChoice & 2 != 0 {
        let left = state.acknowledgment + 100
        options += [.noOperation, .noOperation, .sack([SACKBlock(left: left, right: left + UInt32(optionChoice))])]
    }
    if optionChoice & 4 != 0 { options.append(.maximumSegmentSize(UInt16(optionChoice) << 4)) }
    let payload = pattern(from: sequence, count: min(max(0, payloadLength), 66_000))
    let fields = TCPPacketFields(
        source: service,
        destination: connection == 1 ? otherClient : client,
        sourcePort: 9999,
        destinationPort: connection == 2 ? 40_001 : 40_000,
        sequenceNumber: sequence,
        acknowledgmentNumber: state.acknowledgment,
        flags: flags,
        window: state.window,
        urgentPointer: flags.contains(.urg) ? UInt16(optionChoice) : 0,
        options: options,
        payload: payload,
        timeToLive: optionChoice & 8 != 0 ? 63 : 64,
        dontFragment: optionChoice & 16 == 0
    )
    state.next[connection] = sequence + UInt32(payload.count)
    return fields
}

/// Every payload byte is its sequence number's low byte: 512 bytes hold every run of up to 256
/// bytes from any start, and a payload is copied from it in slices, not built byte by byte (the
/// fuzzer's instrumentation makes a loop per byte the target's main cost).
private let cycle: [UInt8] = (0..<512).map { UInt8(truncatingIfNeeded: $0) }

private func pattern(from sequence: SequenceNumber, count: Int) -> [UInt8] {
    var payload: [UInt8] = []
    payload.reserveCapacity(count)
    var start = Int(sequence.rawValue & 0xFF)
    while payload.count < count {
        let take = min(256, count - payload.count)
        payload += cycle[start..<start + take]
        start = (start + take) & 0xFF
    }
    return payload
}

/// Whether two byte sequences are the same, compared with memcmp (see `cycle`).
private func same(_ left: ArraySlice<UInt8>, _ right: ArraySlice<UInt8>) -> Bool {
    guard left.count == right.count else { return false }
    guard !left.isEmpty else { return true }
    return left.withUnsafeBytes { l in
        right.withUnsafeBytes { r in memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0 }
    }
}

/// Splits into more pieces than this are not checked: cutting 60 KB into 1-byte pieces runs the
/// same code as cutting 300 bytes so, and took most of the target's time (a fifth of the speed).
private let maximumPieces = 512

private func pieceCount(_ segment: TCPPacketFields, maximumPayload: Int) -> Int {
    segment.payload.count / max(1, maximumPayload)
}

/// The pieces of a split segment are the segment again: consecutive, same header, the flags the
/// offload would give each, and the payload cut in order.
private func checkSplit(_ segment: TCPPacketFields, maximumPayload: Int) {
    guard pieceCount(segment, maximumPayload: maximumPayload) <= maximumPieces else { return }
    let pieces = segment.split(maximumPayload: maximumPayload)
    let limit = max(1, maximumPayload)
    guard segment.payload.count > limit else {
        require(pieces == [segment], "a segment that fits was changed by split")
        return
    }
    require(pieces.count == (segment.payload.count + limit - 1) / limit)
    var offset = 0
    for (index, piece) in pieces.enumerated() {
        let last = index == pieces.count - 1
        require(!piece.payload.isEmpty && piece.payload.count <= limit)
        // A SYN takes one sequence number before the data, and stays on the first piece only.
        let isSYN = segment.flags.contains(.syn)
        let synLength: UInt32 = isSYN && index > 0 ? 1 : 0
        require(piece.sequenceNumber == segment.sequenceNumber + synLength + UInt32(offset))
        require(same(piece.payload[...], segment.payload[offset..<(offset + piece.payload.count)]))
        var expectedFlags = segment.flags
        if !last { expectedFlags.subtract([.fin, .psh]) }
        if index > 0 { expectedFlags.subtract([.cwr, .syn]) }
        if segment.flags.contains(.urg) && Int(segment.urgentPointer) <= offset { expectedFlags.remove(.urg) }
        require(piece.flags == expectedFlags, "piece \(index) has flags \(piece.flags.rawValue)")
        if piece.flags.contains(.urg) {
            require(Int(piece.urgentPointer) + offset == Int(segment.urgentPointer))
        }
        var header = piece
        header.sequenceNumber = segment.sequenceNumber
        header.payload = segment.payload
        header.flags = segment.flags
        header.urgentPointer = segment.urgentPointer
        var expected = segment
        if isSYN && index > 0 {
            // The options only a SYN carries stay on the SYN.
            expected.options = segment.options.filter {
                switch $0 {
                case .maximumSegmentSize, .windowScale, .sackPermitted: false
                default: true
                }
            }
        }
        require(header == expected, "split changed a header field other than sequence, flags and urgent pointer")
        offset += piece.payload.count
    }
    require(offset == segment.payload.count)
}

/// Coalescing keeps every segment, in order: a packet sent as it is is the segment itself, and a
/// super-segment cut into pieces of its size gives back the segments it joined, byte for byte.
private func checkCoalescing(_ segments: [TCPPacketFields], maximumPayload: Int) {
    let packets = SegmentCoalescing.coalesce(segments, maximumPayload: maximumPayload)
    require(packets.reduce(0) { $0 + $1.segmentCount } == segments.count, "segments lost or added")
    var index = 0
    for packet in packets {
        let joined = Array(segments[index..<(index + packet.segmentCount)])
        index += packet.segmentCount
        guard let size = packet.segmentSize else {
            require(packet.segmentCount == 1 && packet.fields == joined[0], "a lone segment was changed")
            continue
        }
        require(joined.count >= 2, "a super-segment of one segment")
        require(packet.fields.payload.count <= maximumPayload, "a super-segment over the limit")
        var joinedOffset = 0
        for segment in joined {
            let end = joinedOffset + segment.payload.count
            require(
                end <= packet.fields.payload.count
                    && same(packet.fields.payload[joinedOffset..<end], segment.payload[...]),
                "a super-segment's bytes differ"
            )
            joinedOffset = end
        }
        require(joinedOffset == packet.fields.payload.count, "a super-segment's bytes differ")
        let last = joined[joined.count - 1]
        require(packet.fields.acknowledgmentNumber == last.acknowledgmentNumber)
        require(packet.fields.window == last.window && packet.fields.options == last.options)
        let pieces = packet.pieces
        require(pieces.count == joined.count, "a super-segment cuts into \(pieces.count), not \(joined.count)")
        for (piece, segment) in zip(pieces, joined) {
            require(piece.payload.count <= size)
            require(piece.sequenceNumber == segment.sequenceNumber && same(piece.payload[...], segment.payload[...]))
            require(piece.source == segment.source && piece.destination == segment.destination)
            require(piece.sourcePort == segment.sourcePort && piece.destinationPort == segment.destinationPort)
            require(piece.optionsLength == segment.optionsLength && piece.urgentPointer == 0)
        }
        require(pieces[pieces.count - 1].flags == last.flags, "the last piece's flags differ")
        if packet.fields.totalLength <= Int(UInt16.max) {
            require((try? packet.fields.build()) != nil, "a super-segment does not build")
        }
    }
}

/// The runs name the packets `coalesce` joins, by place; built apart (the headers, then the TCP
/// checksum summed over the segments' payloads where they lie, at odd offsets too), each packet
/// has the headers of the one built whole. Runs capped at a few segments cover every segment
/// once, in order.
private func checkGathered(_ segments: [TCPPacketFields], maximumPayload: Int) {
    let packets = SegmentCoalescing.coalesce(segments, maximumPayload: maximumPayload)
    let runs = SegmentCoalescing.runs(segments, maximumPayload: maximumPayload)
    require(runs.count == packets.count, "\(runs.count) runs for \(packets.count) packets")
    for (run, packet) in zip(runs, packets) {
        require(run.segments.count == packet.segmentCount && run.segmentSize == packet.segmentSize)
        require(run.payloadLength == packet.fields.payload.count, "a run's payload length differs")
        guard let whole = try? packet.fields.build() else { continue }
        var buffer = [UInt8](repeating: 0xEE, count: 120)
        let headers: [UInt8]? = buffer.withUnsafeMutableBytes { buffer in
            let header = SegmentCoalescing.header(of: run, in: segments)
            guard let length = try? header.buildHeaders(into: buffer, payloadLength: run.payloadLength) else {
                return nil
            }
            let built = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
            withPayloads(of: segments, run.segments) { GatheredChecksum.store(headers: built, payload: $0) }
            return Array(built)
        }
        guard let headers else { return require(false, "the headers of a packet that builds whole do not build") }
        require(whole.count == headers.count + run.payloadLength, "the gathered packet's length differs")
        require(headers[...] == whole[0..<headers.count], "the gathered headers or checksum differ")
    }
    let capped = SegmentCoalescing.runs(segments, maximumPayload: maximumPayload, maximumSegments: 3)
    var next = 0
    for run in capped {
        require(run.segments.lowerBound == next && (1...3).contains(run.segments.count), "a capped run is misplaced")
        next = run.segments.upperBound
    }
    require(next == segments.count, "capped runs do not cover every segment")
}

/// Calls `body` with views of the payloads of `segments[range]`, in order.
private func withPayloads(
    of segments: [TCPPacketFields],
    _ range: Range<Int>,
    _ body: ([UnsafeRawBufferPointer]) -> Void
) {
    var views: [UnsafeRawBufferPointer] = []
    func nest(_ index: Int) {
        guard index < range.upperBound else { return body(views) }
        segments[index].payload.withUnsafeBytes { payload in
            views.append(payload)
            nest(index + 1)
        }
    }
    nest(range.lowerBound)
}
