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

    /// Where a packet to send lies in the list of segments coalesced: a run of them, to be sent
    /// as one super-segment without joining their payloads (``header(of:in:)`` gives its header;
    /// the payloads stay where they are and a gathering send takes them in order), or a single
    /// segment to send as it is.
    public struct Run: Equatable, Sendable {
        /// The segments the run joins, in order.
        public var segments: Range<Int>
        /// Payload bytes per piece; nil for a single segment sent as it is.
        public var segmentSize: Int?
        /// The run's payload length, all its segments' together.
        public var payloadLength: Int

        public init(segments: Range<Int>, segmentSize: Int?, payloadLength: Int) {
            self.segments = segments
            self.segmentSize = segmentSize
            self.payloadLength = payloadLength
        }
    }

    /// Coalesces `segments`, keeping their order; a segment that cannot join
    /// the run before it starts a new one.
    public static func coalesce(_ segments: [TCPPacketFields], maximumPayload: Int = Self.maximumPayload) -> [Packet] {
        runs(segments, maximumPayload: maximumPayload).map { run in
            guard run.segments.count > 1 else {
                return Packet(fields: segments[run.segments.lowerBound], segmentSize: nil, segmentCount: 1)
            }
            var fields = header(of: run, in: segments)
            fields.payload.reserveCapacity(run.payloadLength)
            for index in run.segments { fields.payload += segments[index].payload }
            return Packet(fields: fields, segmentSize: run.segmentSize, segmentCount: run.segments.count)
        }
    }

    /// The runs ``coalesce(_:maximumPayload:)`` would join, as places in `segments`: no byte is
    /// copied. A run holds at most `maximumSegments` segments (a gathering send takes one buffer
    /// per segment, and the kernel at most 1,024).
    public static func runs(
        _ segments: [TCPPacketFields],
        maximumPayload: Int = Self.maximumPayload,
        maximumSegments: Int = .max
    ) -> [Run] {
        var runs: [Run] = []
        runs.reserveCapacity(segments.count)
        // Whether the open run's first segment may start a run: judged once, as the run opens.
        var openRunMayGrow = false
        for (index, segment) in segments.enumerated() {
            if openRunMayGrow, var open = runs.last, open.segments.count < maximumSegments {
                let start = open.segments.lowerBound
                let size = segments[start].payload.count
                let last = segments[open.segments.upperBound - 1].payload.count
                if joins(
                    segment,
                    segments[start],
                    size: size,
                    lastLength: last,
                    payloadLength: open.payloadLength,
                    maximumPayload: maximumPayload
                ) {
                    open.segments = open.segments.lowerBound..<(index + 1)
                    open.segmentSize = size
                    open.payloadLength += segment.payload.count
                    runs[runs.count - 1] = open
                    continue
                }
            }
            runs.append(Run(segments: index..<(index + 1), segmentSize: nil, payloadLength: segment.payload.count))
            openRunMayGrow = mayStartRun(segment)
        }
        return runs
    }

    /// The header of the packet that sends `run`: the first segment's, with the acknowledgment,
    /// window, options and flags of the last (an ACK, with PSH if the last had it); its payload
    /// is empty (the run's bytes stay in `segments`). A single segment's header is its own.
    public static func header(of run: Run, in segments: [TCPPacketFields]) -> TCPPacketFields {
        var fields = segments[run.segments.lowerBound]
        fields.payload = []
        guard run.segments.count > 1 else { return fields }
        let last = segments[run.segments.upperBound - 1]
        fields.acknowledgmentNumber = last.acknowledgmentNumber
        fields.window = last.window
        fields.options = last.options
        fields.flags = last.flags.contains(.psh) ? [.ack, .psh] : [.ack]
        return fields
    }

    private static func mayStartRun(_ segment: TCPPacketFields) -> Bool {
        !segment.payload.isEmpty && segment.flags.contains(.ack) && segment.flags.isSubset(of: [.ack, .psh])
            && segment.urgentPointer == 0
    }

    /// Whether `segment` continues the run that starts with `first`, whose segments so far hold
    /// `payloadLength` bytes, the last of them `lastLength`.
    private static func joins(
        _ segment: TCPPacketFields,
        _ first: TCPPacketFields,
        size: Int,
        lastLength: Int,
        payloadLength: Int,
        maximumPayload: Int
    ) -> Bool {
        mayStartRun(segment)
            && lastLength == size
            && segment.payload.count <= size
            && payloadLength + segment.payload.count <= maximumPayload
            && segment.source == first.source && segment.destination == first.destination
            && segment.sourcePort == first.sourcePort && segment.destinationPort == first.destinationPort
            && segment.sequenceNumber == first.sequenceNumber + UInt32(payloadLength)
            && segment.optionsLength == first.optionsLength
            && segment.timeToLive == first.timeToLive && segment.typeOfService == first.typeOfService
            && segment.dontFragment == first.dontFragment
    }
}
