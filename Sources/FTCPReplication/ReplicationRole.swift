/// Which end of the replication channel a bridge is: the primary, which clients talk to, or the
/// secondary, which shadows the primary's connections and takes them over if it fails.
///
/// Every datagram names its sender's role; an opener accepts only its peer's role, so a datagram
/// reflected back at its own sender is dropped.
public enum ReplicationRole: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case primary = 1
    case secondary = 2

    /// The role at the other end of the channel.
    public var peer: ReplicationRole {
        switch self {
        case .primary: .secondary
        case .secondary: .primary
        }
    }

    public var description: String {
        switch self {
        case .primary: "primary"
        case .secondary: "secondary"
        }
    }
}
