/// One message of the replication channel, before sealing or after opening.
///
/// Each kind travels in one direction only, which both ``ReplicationSealer`` and
/// ``ReplicationOpener`` enforce: segments from the secondary to the primary, injections from the
/// primary to the secondary, heartbeats both ways.
public enum ReplicationMessage: Equatable, Hashable, Sendable {
    /// An IPv4/TCP packet the secondary's kernel produced for a client (secondary → primary).
    case segment(packet: [UInt8])
    /// A packet for the secondary to hand to its kernel, such as an ACK the primary generated
    /// (primary → secondary).
    case inject(packet: [UInt8])
    /// A liveness message (both directions).
    case heartbeat(ReplicationHeartbeat)
    /// A request to send again the datagrams with counters `firstCounter ..< firstCounter + count`
    /// of the requester's peer's current epoch, which never arrived (both directions). Losing a
    /// secondary's segment on this channel would otherwise cost a retransmission timeout of the
    /// secondary's kernel.
    case resendRequest(firstCounter: UInt64, count: UInt32)
    /// Several packets the secondary's kernel produced, in the order it produced them
    /// (secondary → primary): one datagram, one MAC and one system call for a burst, and
    /// IP fragments filled to the MTU instead of one small fragment per full-size segment.
    case segments(packets: [[UInt8]])
    /// Connections the primary no longer replicates (a divergence, the secondary's replica
    /// lost or counted failed): the secondary must not inherit them at a takeover, since its
    /// copy is not what the client holds (primary → secondary). At most
    /// ``ReplicationSealer/maximumReleasedPerMessage`` per message.
    case released(connections: [ReplicatedConnectionID])
    /// New bytes the secondary's kernel sent, as digests instead of the bytes (secondary →
    /// primary, `--relay digests`): the primary compares them with its own.
    case digests(segments: [DigestedSegment])
    /// Connections whose segments the secondary must relay whole again, resending what its
    /// kernel sent that the client has not acknowledged (primary → secondary, `--relay
    /// digests`): the primary serves them from the secondary's bytes now. At most
    /// ``ReplicationSealer/maximumReleasedPerMessage`` per message.
    case relayWhole(connections: [ReplicatedConnectionID])

    /// The message's kind, without its contents.
    public var kind: Kind {
        switch self {
        case .segment: .segment
        case .inject: .inject
        case .heartbeat: .heartbeat
        case .resendRequest: .resendRequest
        case .segments: .segments
        case .released: .released
        case .digests: .digests
        case .relayWhole: .relayWhole
        }
    }

    /// The kinds of message the channel carries, with their wire codes.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case segment = 1
        case inject = 2
        case heartbeat = 3
        case resendRequest = 4
        case segments = 5
        case released = 6
        case digests = 7
        case relayWhole = 8

        /// Whether a bridge in `role` ever sends this kind of message.
        public func isSent(by role: ReplicationRole) -> Bool {
            switch (self, role) {
            case (.heartbeat, _), (.resendRequest, _), (.segment, .secondary), (.segments, .secondary),
                (.inject, .primary), (.released, .primary), (.digests, .secondary), (.relayWhole, .primary):
                true
            case (.segment, .primary), (.segments, .primary), (.inject, .secondary), (.released, .secondary),
                (.digests, .primary), (.relayWhole, .secondary):
                false
            }
        }

        public var description: String {
            switch self {
            case .segment: "segment"
            case .inject: "inject"
            case .heartbeat: "heartbeat"
            case .resendRequest: "resend-request"
            case .segments: "segments"
            case .released: "released"
            case .digests: "digests"
            case .relayWhole: "relay-whole"
            }
        }
    }
}

/// A client connection as the replication channel names it: the client's address and port and
/// the server's port (the server's address is the service address on both sides).
public struct ReplicatedConnectionID: Equatable, Hashable, Sendable {
    public var clientAddress: UInt32
    public var clientPort: UInt16
    public var serverPort: UInt16

    public init(clientAddress: UInt32, clientPort: UInt16, serverPort: UInt16) {
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.serverPort = serverPort
    }
}
