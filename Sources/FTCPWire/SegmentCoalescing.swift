/// Joins runs of consecutive data segments to one receiver into super-segments
/// that the kernel cuts up again on the way out (generic segmentation offload),
/// so that a bridge hands the kernel one packet per run instead of one per
/// segment.
///
/// A run is a sequence of segments of the same connection, each starting where
/// the previous one ended, carrying only ACK (and PSH), no urgent data, with
/// option blocks of the same length, every one but the last exactly
/// `segmentSize` bytes of payload. The super-segment carries the run's first
/// sequence number and the acknowledgment, window and options of its last
/// segment: those only move forward along a run (a later acknowledgment, a
/// right edge that never moves left, a newer timestamp), so the receiver learns
/// the same thing a moment sooner for the earlier bytes. The kernel gives every
/// piece but the last the same header with PSH cleared.
public enum SegmentCoalescing {
    /// One packet to send: a segment as it was, or a super-segment to be cut
    /// into pieces of `segmentSize` payload bytes.
    public struct Packet: Equatable, Sendable {
        public var fields: TCPPacketFields
        /// Payload bytes per piece; nil for a segment sent as it is.
        public var segmentSize: Int?
        /// How many segments were joined.
        public var segmentCount: Int

        public init(fields: TCPPacketFields, segmentSize: Int?, segmentCount: Int) {
            self.fields = fields
            self.segmentSize = segmentSize
            self.segmentCount = segmentCount
        }

        /// The packet cut as the offload would cut it: pieces of `segmentSize` payload bytes
        /// with the same header, PSH only on the last. For sending without the offload.
        public var pieces: [TCPPacketFields] {
            guard let size = segmentSize else { return [fields] }
            return fields.split(maximumPayload: size)
        }
    }

    /// Largest payload of one super-segment: an IPv4 packet is at most 65,535
    /// bytes, less 20 for the IP header and 60 for the largest TCP header.
    public static let maximumPayload = 65_535 - 20 - 60

    /// Coalesces `segments`, keeping their order; a segment that cannot join
    /// the run before it starts a new one.
    public static func coalesce(_ segments: [TCPPacketFields], maximumPayload: Int = Self.maximumPayload) -> [Packet] {
        var packets: [Packet] = []
        packets.reserveCapacity(segments.count)
        // The open run: its first segment's index in `packets`, the piece size and
        // the last segment's payload length.
        var run: (index: Int, size: Int, lastLength: Int)?
        for segment in segments {
            if let open = run,
                joins(
                    segment,
                    packets[open.index],
                    size: open.size,
                    lastLength: open.lastLength,
                    maximumPayload: maximumPayload
                )
            {
                // In place: a copy of the packet would copy the growing payload each time.
                let psh = segment.flags.contains(.psh)
                packets[open.index].fields.payload += segment.payload
                packets[open.index].fields.acknowledgmentNumber = segment.acknowledgmentNumber
                packets[open.index].fields.window = segment.window
                packets[open.index].fields.options = segment.options
                packets[open.index].fields.flags = psh ? [.ack, .psh] : [.ack]
                packets[open.index].segmentSize = open.size
                packets[open.index].segmentCount += 1
                run = (open.index, open.size, segment.payload.count)
                continue
            }
            packets.append(Packet(fields: segment, segmentSize: nil, segmentCount: 1))
            run = mayStartRun(segment) ? (packets.count - 1, segment.payload.count, segment.payload.count) : nil
        }
        return packets
    }

    private static func mayStartRun(_ segment: TCPPacketFields) -> Bool {
        !segment.payload.isEmpty && segment.flags.contains(.ack) && segment.flags.isSubset(of: [.ack, .psh])
            && segment.urgentPointer == 0
    }

    private static func joins(
        _ segment: TCPPacketFields,
        _ open: Packet,
        size: Int,
        lastLength: Int,
        maximumPayload: Int
    ) -> Bool {
        let first = open.fields
        return mayStartRun(segment)
            && lastLength == size
            && segment.payload.count <= size
            && first.payload.count + segment.payload.count <= maximumPayload
            && segment.source == first.source && segment.destination == first.destination
            && segment.sourcePort == first.sourcePort && segment.destinationPort == first.destinationPort
            && segment.sequenceNumber == first.sequenceNumber + UInt32(first.payload.count)
            && segment.optionsLength == first.optionsLength
            && segment.timeToLive == first.timeToLive && segment.typeOfService == first.typeOfService
            && segment.dontFragment == first.dontFragment
    }
}
