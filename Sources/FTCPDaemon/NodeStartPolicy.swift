import FTCPReplication

/// Which role a node takes when its bridge starts: the decision, pure.
///
/// With a service address of its own (`--service-address`), the role given on the command
/// line is only a preference: whoever serves the address keeps serving it. A node whose peer
/// answers for the address joins as the secondary (a repaired primary, or a supervisor
/// restarting one, never loops on "address held elsewhere"); a node that finds the address on
/// its own interface and nobody else answering serves as primary (its bridge process was
/// restarted after it had taken over); otherwise the configured role.
///
/// Without one (the older form: the service address is the primary's own), roles never swap
/// and the configured role stands; a primary whose address is held elsewhere refuses to start.
public enum NodeStartPolicy {
    public struct Decision: Equatable, Sendable {
        public var role: ReplicationRole
        /// Remove the service address from this host's interface before starting.
        public var releaseLocalServiceAddress: Bool
        /// Remove a primary's chains left on this host (it served, and its peer took over).
        public var removeStalePrimaryRules: Bool
        /// Why, for the log (nil when the configured role stands for the usual reason).
        public var explanation: String?
    }

    /// - Parameters:
    ///   - configured: the role on the command line.
    ///   - separateServiceAddress: whether the service address is not a node's own.
    ///   - heldByPeer: another host answered an ARP probe for the service address.
    ///   - heldHere: the service address is on this host's interface.
    public static func decide(
        configured: ReplicationRole,
        separateServiceAddress: Bool,
        heldByPeer: Bool,
        heldHere: Bool
    ) -> Decision {
        guard separateServiceAddress else {
            return Decision(
                role: configured,
                releaseLocalServiceAddress: false,
                removeStalePrimaryRules: false,
                explanation: nil
            )
        }
        if heldByPeer {
            return Decision(
                role: .secondary,
                releaseLocalServiceAddress: heldHere,
                removeStalePrimaryRules: true,
                explanation: configured == .primary
                    ? "another host answers for the service address (it took over): joining it as the secondary"
                    : (heldHere ? "another host serves the service address: this host's copy of it is released" : nil)
            )
        }
        if heldHere {
            return Decision(
                role: .primary,
                releaseLocalServiceAddress: false,
                removeStalePrimaryRules: false,
                explanation: configured == .secondary
                    ? "this host holds the service address and no other answers for it: serving as primary" : nil
            )
        }
        return Decision(
            role: configured,
            releaseLocalServiceAddress: false,
            removeStalePrimaryRules: false,
            explanation: nil
        )
    }
}
