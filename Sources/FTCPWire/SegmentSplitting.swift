/// Cutting one large segment (a super-segment the kernel built for segmentation
/// offload) into segments of at most a given payload, as the offload itself
/// would: consecutive sequence numbers, the same acknowledgment, window and
/// options on every piece, FIN and PSH only on the last piece, CWR only on the
/// first, and the urgent pointer carried by the pieces it still points beyond.
/// A SYN with data (TCP Fast Open) keeps the SYN, and the options only a SYN
/// carries, on its first piece; the SYN takes one sequence number before the
/// data, so the later pieces start one further.
extension TCPPacketFields {
    /// The pieces of this segment with at most `maximumPayload` payload bytes each; the
    /// segment itself when it already fits (or carries no payload). A `maximumPayload`
    /// below one is taken as one.
    public func split(maximumPayload: Int) -> [TCPPacketFields] {
        let limit = max(1, maximumPayload)
        guard payload.count > limit else { return [self] }
        var pieces: [TCPPacketFields] = []
        pieces.reserveCapacity((payload.count + limit - 1) / limit)
        let isSYN = flags.contains(.syn)
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + limit)
            var piece = self
            piece.sequenceNumber = sequenceNumber + UInt32(offset)
            piece.payload = Array(payload[offset..<end])
            if end < payload.count { piece.flags.subtract([.fin, .psh]) }
            if offset > 0 { piece.flags.remove(.cwr) }
            if isSYN && offset > 0 {
                piece.flags.remove(.syn)
                piece.sequenceNumber = sequenceNumber + 1 + UInt32(offset)
                piece.options = options.filter { !$0.isSYNOnly }
            }
            if flags.contains(.urg) {
                if Int(urgentPointer) > offset {
                    piece.urgentPointer = urgentPointer - UInt16(offset)
                } else {
                    piece.flags.remove(.urg)
                    piece.urgentPointer = 0
                }
            }
            pieces.append(piece)
            offset = end
        }
        return pieces
    }

    /// The pieces of this segment that fit a maximum segment size of `maximumSegmentSize`
    /// bytes of payload plus TCP options (RFC 6691).
    public func split(maximumSegmentSize: Int) -> [TCPPacketFields] {
        split(maximumPayload: maximumSegmentSize - (tcpHeaderLength - TCPSegment.minimumHeaderLength))
    }
}

extension TCPOption {
    /// Whether only a SYN carries this option (MSS, window scale, SACK permitted: RFC 9293
    /// §3.2, RFC 7323 §2.2, RFC 2018 §2).
    var isSYNOnly: Bool {
        switch self {
        case .maximumSegmentSize, .windowScale, .sackPermitted: true
        default: false
        }
    }
}
