/// Why ``ReplicationOpener`` dropped a datagram.
///
/// The channel runs on a LAN segment where anyone can send anything, so dropping is the normal
/// answer to hostile or stale input, not an exceptional one: each reason has its own counter in
/// ``ReplicationStatistics``, and none of them ever traps.
public enum ReplicationDropReason: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The fixed header is wrong (length, magic, reserved byte, role value, body length). Checked
    /// before the MAC, so this is unauthenticated noise.
    case malformed(Malformation)
    /// The HMAC tag does not match: forged, corrupted, or sealed with another key.
    case badMAC
    /// The datagram claims to come from the opener's own role: a reflection.
    case wrongRole(ReplicationRole)
    /// The sender's epoch is older than the peer's current one: a replay from before a restart.
    case oldEpoch(received: UInt64, current: UInt64)
    /// The counter was already accepted, or is too far behind the newest one to tell.
    case replay(epoch: UInt64, counter: UInt64)
    /// The datagram is authentic but its body is not understood: a peer running an incompatible
    /// version, or a bug in the peer.
    case invalidBody(Malformation)
    /// The datagram is authentic (its MAC checks under the shared key) but written in a format
    /// version this build does not speak: the peer runs an ftcp this node cannot replicate with.
    /// Every version keeps the envelope (magic, version byte, body length at bytes 24..<28, the
    /// HMAC-SHA256 tag at the end), so the two nodes can always tell each other so.
    case incompatibleVersion(peer: UInt8, local: UInt8)

    /// What exactly is malformed.
    public enum Malformation: Equatable, Hashable, Sendable, CustomStringConvertible {
        /// The datagram is shorter than a header and a tag, or longer than the largest datagram.
        case badLength(Int)
        /// The first four bytes are not the channel's magic.
        case badMagic
        /// The reserved header byte is not zero.
        case reservedNotZero(UInt8)
        /// The role byte is neither primary nor secondary.
        case unknownRole(UInt8)
        /// The body length field disagrees with the datagram's length.
        case bodyLengthMismatch(declared: UInt32, datagramLength: Int)
        /// The message type code is unknown.
        case unknownMessageType(UInt8)
        /// The sender's role never sends this kind of message.
        case wrongDirection(kind: ReplicationMessage.Kind, sender: ReplicationRole)
        /// A segment or inject message carries no packet.
        case emptyPacket
        /// A heartbeat body is shorter than its version requires, or has version 0.
        case badHeartbeat(version: UInt8, length: Int)
        /// A resend request body is not 12 bytes or asks for 0 or more than 1024 datagrams.
        case badResendRequest(length: Int)
        /// A segments body holds no packet, an empty one, or lengths that do not add up to it.
        case badSegments(length: Int)
        /// A released body names no connection, more than 1024, or is not 2 + 8 × count bytes.
        case badReleased(length: Int)
        case badDigests(length: Int)

        public var description: String {
            switch self {
            case let .badLength(length): "impossible datagram length \(length)"
            case .badMagic: "bad magic"
            case let .reservedNotZero(value): "reserved byte is \(value), not 0"
            case let .unknownRole(value): "unknown sender role \(value)"
            case let .bodyLengthMismatch(declared, length):
                "body length \(declared) disagrees with the \(length)-byte datagram"
            case let .unknownMessageType(value): "unknown message type \(value)"
            case let .wrongDirection(kind, sender): "\(kind) message from a \(sender)"
            case .emptyPacket: "empty packet"
            case let .badHeartbeat(version, length): "heartbeat version \(version) with a \(length)-byte body"
            case let .badResendRequest(length): "malformed resend request (\(length)-byte body or count out of range)"
            case let .badSegments(length):
                "malformed segments message (\(length)-byte body whose packet lengths do not add up)"
            case let .badReleased(length): "malformed released message (\(length)-byte body)"
            case let .badDigests(length): "malformed digests message (\(length)-byte body)"
            }
        }
    }

    public var description: String {
        switch self {
        case let .malformed(what): "malformed datagram: \(what)"
        case .badMAC: "bad MAC (forged, corrupted, or another key)"
        case let .wrongRole(role): "datagram claims our own role (\(role)): reflected"
        case let .oldEpoch(received, current): "epoch \(received) is older than the peer's current epoch \(current)"
        case let .replay(epoch, counter): "replayed or too old: epoch \(epoch) counter \(counter)"
        case let .invalidBody(what): "authentic datagram with an invalid body: \(what)"
        case let .incompatibleVersion(peer, local):
            "the peer speaks replication format version \(peer), this node version \(local): the nodes cannot "
                + "replicate until both run an ftcp of the same format version"
        }
    }
}
