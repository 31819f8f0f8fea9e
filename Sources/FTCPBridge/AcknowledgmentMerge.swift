import FTCPWire

/// The acknowledgment, window and SACK blocks the client sees while both servers count: the
/// smaller of the two (§3.2: "The acknowledgment field contains either the acknowledgment sequence
/// number of the last segment the bridge has received from P or S, whichever is smaller. The same
/// procedure is used to fill the window size field"), so the client never learns of data
/// acknowledged that one server lacks. Windows are merged as right edges (acknowledgment + window
/// in bytes), and only byte ranges both servers hold are reported in SACK blocks (design notes).
/// An acknowledgment that moved forward goes out on its own when no data carries it (§3.4: "If the
/// former is greater than the latter, the bridge constructs a TCP segment with no payload").
struct AcknowledgmentMerge {
    /// What one server's latest acknowledging segment said (client space).
    struct Report {
        var acknowledged: SequenceNumber?
        var rightEdge: SequenceNumber?
        var sackBlocks: [SACKBlock]

        init(_ stream: ServerStream) {
            acknowledged = stream.acknowledged
            rightEdge = stream.rightEdge
            sackBlocks = stream.sackBlocks
        }
    }

    let primary: Report
    let secondary: Report

    /// Reads only the two streams' acknowledgment fields, not their queues.
    init(primary: ServerStream, secondary: ServerStream) {
        self.primary = Report(primary)
        self.secondary = Report(secondary)
    }

    /// The smaller acknowledgment of the two servers, if both have sent one.
    var acknowledgment: SequenceNumber? {
        guard let a = primary.acknowledged, let b = secondary.acknowledged else { return nil }
        return SequenceNumber.earlier(a, b)
    }

    /// The smaller right edge of the two servers' windows.
    var edge: SequenceNumber? {
        guard let a = primary.rightEdge, let b = secondary.rightEdge else { return nil }
        return SequenceNumber.earlier(a, b)
    }

    /// Whether the merged acknowledgment or window edge moved beyond what the client was told.
    func hasAdvanced(beyond advertised: ClientAdvertisement) -> Bool {
        guard let ack = acknowledgment, let edge else { return false }
        let ackAdvanced = advertised.acknowledgment.map { $0 < ack } ?? true
        let edgeAdvanced = advertised.edge.map { $0 < edge } ?? true
        return ackAdvanced || edgeAdvanced
    }

    /// The SACK blocks both servers back, above `ack`, at most `limit` of them (none until both
    /// servers have acknowledged something).
    func sackBlocks(above ack: SequenceNumber, limit: Int) -> [SACKBlock] {
        guard let ackP = primary.acknowledged, let ackS = secondary.acknowledged else { return [] }
        return SACKBlocks.shared(
            primary: (ackP, primary.sackBlocks),
            secondary: (ackS, secondary.sackBlocks),
            above: ack,
            limit: limit
        )
    }

    /// Whether a server's segment was a duplicate ACK the client must see as one: no data, no
    /// FIN, the same acknowledgment and window as that server's previous segment, from the server
    /// whose acknowledgment is the merged one. It is what drives the client's fast retransmit
    /// when that server misses a segment.
    func isDuplicate(
        _ segment: TCPSegment,
        from stream: ServerStream,
        previousAcknowledgment: SequenceNumber?,
        previousWindowBytes: UInt32
    ) -> Bool {
        segment.payloadLength == 0 && !segment.flags.contains(.fin)
            && previousAcknowledgment == stream.acknowledged && previousWindowBytes == stream.windowBytes
            && stream.acknowledged == acknowledgment
    }

    /// Records a server's acknowledgment and window (`shift` applied) unless it is older than the
    /// one recorded already.
    static func record(_ segment: TCPSegment, into stream: inout ServerStream, shift: UInt8) {
        guard segment.flags.contains(.ack) else { return }
        let ack = segment.acknowledgmentNumber
        if let old = stream.acknowledged, ack < old { return }
        stream.acknowledged = ack
        stream.windowBytes = UInt32(segment.window) << UInt32(shift)
    }
}
