/// What the guardian does when the bridge process it watches has gone: the decision, pure.
///
/// A bridge that dies leaves its host in a state no client can use: its NFQUEUE rules
/// (without bypass) drop every protected segment, and as primary its host still answers ARP
/// for the service address, so the secondary's split-brain guard never lets it take over.
/// The guardian, a small parent process that outlives the bridge, undoes exactly as much as
/// makes the host no worse than one plain server:
///
/// | role and last state the bridge reported | what the guardian does | why |
/// |---|---|---|
/// | primary, replicating (a secondary holds every replica) | releases the service address, keeps the rules | the secondary's probes go unanswered and it takes over; the rules keep this kernel from answering clients in its own sequence space |
/// | primary, alone or still waiting for a secondary | removes the rules, keeps the address, starts the bridge again | nobody else can serve: this kernel serves on its own, as a plain server (connections that had Δ ≠ 0 are lost, as they would be with no ftcp); the new bridge process watches that no other host holds the address |
/// | secondary, promoted (it serves the address) | removes the rules, keeps the address | no black hole: this host goes on as a plain server (connections opened since the takeover go on, new ones are served; inherited ones, which the bridge translated, are lost) |
/// | secondary, not promoted | removes the rules, starts the bridge again | the primary serves alone after its detection time, and takes the new secondary back for new connections |
/// | stopped cleanly, or fenced itself on purpose | nothing | the bridge did its own clean-up |
/// | died before it installed anything | nothing | it never touched the host |
public enum GuardianPolicy {
    /// How the bridge process ended.
    public enum WorkerEnd: Equatable, Sendable {
        /// Exited 0 after a requested stop: it cleaned up as it chose to.
        case stoppedCleanly
        /// Exited with ``fencedExitCode``: it gave up the address on purpose (it learnt that
        /// its peer serves) and did its own clean-up.
        case fenced
        /// Exited with another status, or was killed by a signal (a crash, SIGKILL, a trap).
        case died(String)
        /// Stopped answering the guardian for longer than the hang timeout and was killed.
        case hung(milliseconds: UInt64)
    }

    /// The exit status a bridge uses when it fenced itself on purpose.
    public static let fencedExitCode: Int32 = 3

    /// What to undo on the host.
    public struct Decision: Equatable, Sendable {
        public var releaseServiceAddress: Bool
        public var removeRules: Bool
        /// Start the bridge process again (after a back-off): a primary that served alone
        /// serves, and watches its address, again; a secondary takes up replicating again.
        public var restartBridge = false
        /// One sentence for the log: what happened and what it means for clients.
        public var explanation: String
    }

    /// - Parameters:
    ///   - role: the bridge's role, `primary` or `secondary`.
    ///   - lastState: the last state the bridge reported (nil if it reported none: it died
    ///     before its rules were in place).
    ///   - end: how it ended.
    public static func decide(role: String, lastState: String?, end: WorkerEnd) -> Decision {
        switch end {
        case .stoppedCleanly:
            return Decision(
                releaseServiceAddress: false,
                removeRules: false,
                explanation: "the bridge stopped cleanly; nothing to undo"
            )
        case .fenced:
            return Decision(
                releaseServiceAddress: false,
                removeRules: false,
                explanation: "the bridge gave up the service address on purpose; nothing more to undo"
            )
        case .died, .hung:
            break
        }
        guard let lastState else {
            return Decision(
                releaseServiceAddress: false,
                removeRules: false,
                explanation: "the bridge ended before it installed its rules; nothing to undo"
            )
        }
        switch (role, lastState) {
        case ("primary", "replicating"):
            return Decision(
                releaseServiceAddress: true,
                removeRules: false,
                explanation: """
                    the secondary holds a replica of every protected connection: the service address is released so \
                    that it takes them over within its detection time; the rules stay so that this kernel never \
                    answers their clients
                    """
            )
        case ("primary", _):
            return Decision(
                releaseServiceAddress: false,
                removeRules: true,
                restartBridge: true,
                explanation: """
                    no secondary was replicating: the rules are removed so that this host serves as a plain server \
                    (connections that were protected are lost, new ones are served); the bridge starts again, serves \
                    alone and watches that no other host holds the address
                    """
            )
        case ("secondary", "promoted"):
            return Decision(
                releaseServiceAddress: false,
                removeRules: true,
                explanation: """
                    this host serves the service address and nobody else can: the rules are removed and it goes on as \
                    a plain server (connections opened since the takeover go on and new ones are served; inherited \
                    ones, which the bridge translated, are lost)
                    """
            )
        default:
            return Decision(
                releaseServiceAddress: false,
                removeRules: true,
                restartBridge: true,
                explanation: """
                    the secondary's rules are removed; the primary serves alone after its detection time, and this \
                    bridge starts again to protect the connections opened from then on
                    """
            )
        }
    }
}
