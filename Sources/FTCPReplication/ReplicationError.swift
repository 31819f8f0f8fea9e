/// Why ``ReplicationSealer`` refused to seal a message. Every case is a bug or a limit in the
/// caller, never something a peer can cause.
public enum ReplicationError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The packet is larger than one datagram may carry.
    case packetTooLarge(size: Int, limit: Int)
    /// The packet is empty.
    case emptyPacket
    /// A bridge in this role never sends this kind of message (segments go secondary → primary,
    /// injections primary → secondary).
    case wrongDirection(kind: ReplicationMessage.Kind, sender: ReplicationRole)
    /// The per-epoch counter reached its maximum; the sender must restart with a new epoch.
    case counterExhausted(epoch: UInt64)
    /// A resend request asks for no datagram or for more than one request may.
    case resendCountOutOfRange(count: UInt32, limit: UInt32)
    /// A released message must name 1 ... `limit` connections.
    case releasedCountOutOfRange(count: Int, limit: Int)

    public var description: String {
        switch self {
        case let .packetTooLarge(size, limit):
            "a \(size)-byte packet exceeds the replication channel's limit of \(limit) bytes"
        case .emptyPacket:
            "an empty packet cannot be replicated"
        case let .wrongDirection(kind, sender):
            "a \(sender) bridge never sends \(kind) messages"
        case let .counterExhausted(epoch):
            "the message counter of epoch \(epoch) is exhausted; restart with a new epoch"
        case let .releasedCountOutOfRange(count, limit):
            "a released message names 1 to \(limit) connections, not \(count)"
        case let .resendCountOutOfRange(count, limit):
            "a resend request for \(count) datagrams is outside 1...\(limit)"
        }
    }
}
