/// The secondary's relaying, pure: the segments its kernel sends in one burst go to the primary
/// together, in replication messages of at most ``maximumDatagramBytes`` (a segments message,
/// or a segment message for one alone), so a burst costs few datagrams and none is an IP
/// fragment. With a limit of 0 every segment goes in a datagram of its own. Segments relayed as
/// digests (`--relay digests`) are bundled the same way, in digests messages of their own; the
/// two kinds alternate in the order the kernel sent them.
public struct RelayBundler: Sendable {
    public let maximumDatagramBytes: Int
    private var pending: [[UInt8]] = []
    private var cost = 0
    private var pendingDigests: [DigestedSegment] = []

    public init(maximumDatagramBytes: Int) {
        self.maximumDatagramBytes = maximumDatagramBytes
    }

    /// The longest packet that goes as it is: one that fits a datagram on its own (with
    /// bundling off, a full-size frame); anything longer is cut before it is added.
    public var maximumPacketBytes: Int {
        guard maximumDatagramBytes > 0 else { return 1_500 }
        return maximumDatagramBytes
            - ReplicationSealer.segmentsDatagramLength(packetCost: ReplicationSealer.segmentsCost(ofPacket: 0))
    }

    /// The most piece digests a digested segment may carry so that it fits a datagram on its
    /// own with a header of up to 120 bytes (at least 1; without bundling, as in a 1,472-byte one).
    public var maximumDigestsPerSegment: Int {
        let limit = maximumDatagramBytes > 0 ? maximumDatagramBytes : 1_472
        let fixed =
            ReplicationSealer.digestsDatagramLength([]) + 2 + ReplicationWireFormat.maximumDigestedHeaderLength + 6
        return max(1, (limit - fixed) / DigestedSegment.digestLength)
    }

    /// Adds one packet. Returns the messages to send first when the packet would take the
    /// bundle past the limit (the packet then starts the next one).
    public mutating func add(_ packet: [UInt8]) -> [ReplicationMessage] {
        let packetCost = ReplicationSealer.segmentsCost(ofPacket: packet.count)
        var full = flushDigests().map { [$0] } ?? []
        if !pending.isEmpty,
            ReplicationSealer.segmentsDatagramLength(packetCost: cost + packetCost) > maximumDatagramBytes
        {
            full += flushPackets().map { [$0] } ?? []
        }
        pending.append(packet)
        cost += packetCost
        return full
    }

    /// Adds one digested segment. Returns the messages to send first: whole packets pending
    /// before it, or digests that with it would pass the limit.
    public mutating func add(digested segment: DigestedSegment) -> [ReplicationMessage] {
        var full = flushPackets().map { [$0] } ?? []
        if !pendingDigests.isEmpty,
            ReplicationSealer.digestsDatagramLength(pendingDigests + [segment]) > max(maximumDatagramBytes, 1)
        {
            full += flushDigests().map { [$0] } ?? []
        }
        pendingDigests.append(segment)
        return full
    }

    /// The messages of what is pending (the kernel's queue is drained); empty if nothing is.
    public mutating func flushAll() -> [ReplicationMessage] {
        (flushPackets().map { [$0] } ?? []) + (flushDigests().map { [$0] } ?? [])
    }

    private mutating func flushDigests() -> ReplicationMessage? {
        guard !pendingDigests.isEmpty else { return nil }
        defer { pendingDigests.removeAll(keepingCapacity: true) }
        return .digests(segments: pendingDigests)
    }

    private mutating func flushPackets() -> ReplicationMessage? {
        defer {
            pending.removeAll(keepingCapacity: true)
            cost = 0
        }
        switch pending.count {
        case 0: return nil
        case 1: return .segment(packet: pending[0])
        default: return .segments(packets: pending)
        }
    }
}
