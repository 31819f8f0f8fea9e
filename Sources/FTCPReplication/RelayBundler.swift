/// The secondary's relaying, pure: the segments its kernel sends in one burst go to the primary
/// together, in replication messages of at most ``maximumDatagramBytes`` (a segments message,
/// or a segment message for one alone), so a burst costs few datagrams and none is an IP
/// fragment. With a limit of 0 every segment goes in a datagram of its own.
public struct RelayBundler: Sendable {
    public let maximumDatagramBytes: Int
    private var pending: [[UInt8]] = []
    private var cost = 0

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

    /// Adds one packet. Returns the message to send first when the packet would take the
    /// bundle past the limit (the packet then starts the next one).
    public mutating func add(_ packet: [UInt8]) -> ReplicationMessage? {
        let packetCost = ReplicationSealer.segmentsCost(ofPacket: packet.count)
        var full: ReplicationMessage?
        if !pending.isEmpty,
            ReplicationSealer.segmentsDatagramLength(packetCost: cost + packetCost) > maximumDatagramBytes
        {
            full = flush()
        }
        pending.append(packet)
        cost += packetCost
        return full
    }

    /// The message of what is pending (the kernel's queue is drained), or nil if nothing is.
    public mutating func flush() -> ReplicationMessage? {
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
