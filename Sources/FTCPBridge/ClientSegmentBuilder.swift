import FTCPWire

/// Builds the segments the client gets, in the secondary's sequence space (§3.4, "Constructing new
/// TCP Segments": "The bridge finds and removes matching payload bytes ... and creates a new TCP
/// segment"). It changes nothing: each method takes what the client was told so far and returns
/// the segments with what the client is told once they are sent, which the caller keeps.
struct ClientSegmentBuilder {
    let addressing: ClientAddressing
    /// The two servers' acknowledgments, windows and SACK blocks.
    let acknowledgments: AcknowledgmentMerge
    /// The acknowledgment of the client's SYN: what a segment carries before any server acknowledged.
    let handshakeAcknowledgment: SequenceNumber
    /// The shift the client applies to window fields (the secondary's).
    let windowShift: UInt8
    /// The most payload plus TCP options a segment to the client may carry.
    let maximumSegmentSize: Int
    /// The TSval and TSecr segments carry, if all three ends agreed on timestamps
    /// (`MergedConnection.clientTimestamps`: the newer of the two servers' clocks, and the echo of
    /// the server whose acknowledgment the client gets). The TSval sent is never older than one
    /// sent before (``ClientAdvertisement``).
    let timestamps: (value: UInt32, echoReply: UInt32)?
    /// How many SACK blocks fit, if all three ends agreed on SACK.
    let sackBlockLimit: Int?

    /// A segment carrying the merged acknowledgment, window, timestamps and SACK blocks.
    func segment(
        sequence: SequenceNumber,
        flags: TCPFlags,
        payload: [UInt8] = [],
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        let ack = acknowledgments.acknowledgment ?? advertised.acknowledgment ?? handshakeAcknowledgment
        var next = advertised
        next.acknowledgment = advertised.acknowledgment.map { SequenceNumber.later($0, ack) } ?? ack
        if let edge = acknowledgments.edge { next = next.widened(to: edge) }
        var options: [TCPOption] = []
        if let timestamps {
            let stamped = next.stamping(timestamps.value)
            next = stamped.advertised
            options += [
                .noOperation, .noOperation, .timestamps(value: stamped.value, echoReply: timestamps.echoReply),
            ]
        }
        if let sackBlockLimit {
            let blocks = acknowledgments.sackBlocks(above: ack, limit: sackBlockLimit)
            if !blocks.isEmpty { options += [.noOperation, .noOperation, .sack(blocks)] }
        }
        let fields = addressing.segment(
            sequence: sequence,
            acknowledgment: ack,
            flags: flags,
            window: next.windowField(acknowledging: ack, shift: windowShift),
            options: options,
            payload: payload
        )
        return (fields, next)
    }

    /// `bytes` from `start` in segments that fit the MSS together with the options each carries;
    /// the last one pushes.
    func dataSegments(
        _ bytes: [UInt8],
        at start: SequenceNumber,
        after advertised: ClientAdvertisement
    ) -> (segments: [TCPPacketFields], advertised: ClientAdvertisement) {
        var segments: [TCPPacketFields] = []
        var advertised = advertised
        var offset = 0
        while offset < bytes.count {
            var (fields, next) = segment(sequence: start + UInt32(offset), flags: [.ack], after: advertised)
            advertised = next
            let optionBytes = fields.tcpHeaderLength - TCPSegment.minimumHeaderLength
            let limit = max(1, maximumSegmentSize - optionBytes)
            let end = min(bytes.count, offset + limit)
            if end == bytes.count { fields.flags = [.ack, .psh] }
            fields.payload = Array(bytes[offset..<end])
            segments.append(fields)
            offset = end
        }
        return (segments, advertised)
    }

    /// The merged FIN, at `position`.
    func fin(
        at position: SequenceNumber,
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        segment(sequence: position, flags: [.fin, .ack], after: advertised)
    }

    /// A segment with no payload that carries the merged acknowledgment and window (§3.4).
    func pureAcknowledgment(
        at position: SequenceNumber,
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        segment(sequence: position, flags: [.ack], after: advertised)
    }

    /// The acknowledgment of the server that goes on alone, with its window and timestamps, when
    /// it is beyond what the client was told; nil otherwise.
    func aloneAcknowledgment(
        of stream: ServerStream,
        at position: SequenceNumber,
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement)? {
        guard let ack = stream.acknowledged, advertised.acknowledgment.map({ $0 < ack }) ?? true else { return nil }
        var next = advertised.widened(to: stream.rightEdge ?? ack)
        let window = next.windowField(acknowledging: ack, shift: windowShift)
        var options: [TCPOption] = []
        if timestamps != nil, let own = stream.timestamps {
            let stamped = next.stamping(own.value)
            next = stamped.advertised
            options += [.noOperation, .noOperation, .timestamps(value: stamped.value, echoReply: own.echoReply)]
        }
        next.acknowledgment = ack
        let fields = addressing.segment(
            sequence: position,
            acknowledgment: ack,
            flags: [.ack],
            window: window,
            options: options
        )
        return (fields, next)
    }

    /// A segment of the primary's kernel while it serves alone (§6: "continue to subtract the offset
    /// Δ_seq"), translated, with its own acknowledgment and its window re-expressed in the
    /// client's shift. Its right edge never moves left of the one the client was offered, as in
    /// the merged stream (``ClientAdvertisement``).
    func forwardedFromPrimaryAlone(
        _ segment: TCPSegment,
        by translation: SequenceSpaceTranslation,
        primaryWindowShift: UInt8,
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        var fields = addressing.translatedFromPrimary(segment, by: translation)
        var next = advertised
        fields.options = Self.stampingTimestamps(of: fields.options, advertised: &next)
        let flags = fields.flags
        if flags.contains(.ack) { next.acknowledgment = fields.acknowledgmentNumber }
        if flags.contains(.syn) { return (fields, next) }
        let bytes = UInt64(segment.window) << UInt64(primaryWindowShift)
        if flags.contains(.ack) && !flags.contains(.rst) {
            // The kernel's own edge, or the one the client was offered if that is further.
            let ack = fields.acknowledgmentNumber
            next = next.widened(to: ack + UInt32(bytes))
            fields.window = next.windowField(acknowledging: ack, shift: windowShift)
        } else {
            fields.window = UInt16(min(UInt64(UInt16.max), bytes >> UInt64(windowShift)))
        }
        return (fields, next)
    }

    /// A segment of the secondary's kernel while it serves alone: as it is (it is in the client's
    /// space already, and its window in the scale the client applies, the secondary's), but
    /// never with an older TSval than the client was sent before, nor a window edge left of one
    /// offered before (a segment the secondary resends when asked to relay a connection whole
    /// carries the clock, acknowledgment and window of its first sending, and the merged stream
    /// may have carried the primary's newer clock and a later edge).
    func forwardedFromSecondaryAlone(
        _ segment: TCPSegment,
        after advertised: ClientAdvertisement
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        var fields = addressing.relayed(segment)
        var next = advertised
        fields.options = Self.stampingTimestamps(of: fields.options, advertised: &next)
        let flags = fields.flags
        guard flags.contains(.ack) else { return (fields, next) }
        let ack = fields.acknowledgmentNumber
        next.acknowledgment = next.acknowledgment.map { SequenceNumber.later($0, ack) } ?? ack
        if !flags.contains(.syn) && !flags.contains(.rst) {
            next = next.widened(to: ack + UInt32(UInt64(segment.window) << UInt64(windowShift)))
            fields.window = next.windowField(acknowledging: ack, shift: windowShift)
        }
        return (fields, next)
    }

    /// A server's options with its TSval, if any, never older than the newest the client was sent
    /// (``ClientAdvertisement/stamping(_:)``), and `advertised` remembering it.
    private static func stampingTimestamps(
        of options: [TCPOption],
        advertised: inout ClientAdvertisement
    ) -> [TCPOption] {
        options.map { option in
            guard case let .timestamps(value, echoReply) = option else { return option }
            let stamped = advertised.stamping(value)
            advertised = stamped.advertised
            return .timestamps(value: stamped.value, echoReply: echoReply)
        }
    }

    /// A segment cut into pieces that fit the MSS: a kernel may hand over a super-segment (the
    /// queues take GSO packets whole).
    func withinMaximumSegmentSize(_ segment: TCPPacketFields) -> [TCPPacketFields] {
        segment.split(maximumSegmentSize: maximumSegmentSize)
    }
}
