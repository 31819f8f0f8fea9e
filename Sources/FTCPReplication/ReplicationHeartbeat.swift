/// The periodic liveness message both bridges send each other over the replication channel.
///
/// The channel carries these fields without interpreting them; the fault detector gives them
/// meaning. On the wire the body starts with its own format version byte, so fields can be
/// appended later (give a new field a default value in ``init(sentAtMilliseconds:state:connectionCount:sawPeerTrafficAtMilliseconds:)``
/// and existing callers keep compiling).
public struct ReplicationHeartbeat: Equatable, Hashable, Sendable {
    /// The sender's monotonic clock when it sent the heartbeat, in milliseconds (informational:
    /// the two bridges' clocks are not comparable).
    public var sentAtMilliseconds: UInt64
    /// The sender's role state code; opaque to the channel.
    public var state: UInt8
    /// The state code of a bridge that serves the service address after a takeover.
    public static let promotedState: UInt8 = 3
    /// From the primary: it has released the service address for a planned switchover, and
    /// the secondary takes over at once.
    public static let handingOverState: UInt8 = 4
    /// From the secondary: the operator asked it for a switchover; the primary starts one.
    public static let switchoverRequestedState: UInt8 = 5
    /// How many connections the sender is currently protecting.
    public var connectionCount: UInt32
    /// When the sender last saw traffic from its peer, on the sender's clock; opaque to the channel.
    public var sawPeerTrafficAtMilliseconds: UInt64
    /// The hardware (MAC) address, six bytes, of the sender's interface that holds the service
    /// address: where clients' frames to it go. The primary sends it so that the secondary's
    /// capture admits only frames addressed to it. Heartbeat version 2; nil from version 1, and
    /// not sent unless it is exactly six bytes and not all zero (all zero is the wire's none).
    public var hardwareAddress: [UInt8]?
    /// What the sender's build can read beyond the first format's messages (heartbeat version
    /// 3; empty from an older build, which is how a node learns that its peer is older).
    public var capabilities: ReplicationCapabilities

    public init(
        sentAtMilliseconds: UInt64,
        state: UInt8,
        connectionCount: UInt32,
        sawPeerTrafficAtMilliseconds: UInt64,
        hardwareAddress: [UInt8]? = nil,
        capabilities: ReplicationCapabilities = []
    ) {
        self.sentAtMilliseconds = sentAtMilliseconds
        self.state = state
        self.connectionCount = connectionCount
        self.sawPeerTrafficAtMilliseconds = sawPeerTrafficAtMilliseconds
        self.hardwareAddress = hardwareAddress
        self.capabilities = capabilities
    }
}
