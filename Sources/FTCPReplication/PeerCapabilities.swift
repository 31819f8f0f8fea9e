/// What the peer's running build reads (``ReplicationCapabilities``), learnt from its messages:
/// what its latest heartbeat names, and digests if it sent any (they came in the same release
/// as the relay-whole request, the one before heartbeats named capabilities). Both are bound to
/// the epoch they came in, so a peer that restarts, perhaps as another release, reads nothing
/// beyond the first format until its new process says so.
public struct PeerCapabilities: Sendable {
    private var named: (epoch: UInt64, capabilities: ReplicationCapabilities)?
    private var sentDigestsEpoch: UInt64?

    public init() {}

    /// Takes an authentic message from the peer; returns the capabilities its heartbeat names
    /// when they differ from the ones the last heartbeat named (for the node to say so).
    public mutating func heard(_ received: ReceivedReplicationMessage) -> (
        now: ReplicationCapabilities, before: ReplicationCapabilities?
    )? {
        switch received.message {
        case let .heartbeat(heartbeat):
            let before = named?.capabilities
            named = (received.epoch, heartbeat.capabilities)
            return before == heartbeat.capabilities ? nil : (heartbeat.capabilities, before)
        case .digests:
            sentDigestsEpoch = received.epoch
            return nil
        default:
            return nil
        }
    }

    /// What the peer process of `epoch` (the opener's current peer epoch) reads.
    public func current(peerEpoch epoch: UInt64?) -> ReplicationCapabilities {
        guard let epoch else { return [] }
        var capabilities: ReplicationCapabilities = []
        if let named, named.epoch == epoch { capabilities = named.capabilities }
        if sentDigestsEpoch == epoch { capabilities.insert(.digests) }
        return capabilities
    }
}
