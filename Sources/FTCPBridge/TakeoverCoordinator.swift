/// The secondary's side of a failover, as a state machine: when the primary
/// falls silent, make sure it is really gone before taking its address, then
/// take over in an order that never lets the local kernel reset an
/// inherited connection (paper §5).
///
/// Pure: the shell reports what the fault detector concluded and what the
/// ARP probe found, and carries out the returned actions in order.
public struct TakeoverCoordinator: Sendable {
    /// Where the secondary stands.
    public enum State: Equatable, Sendable {
        /// Replicating behind a live (or not yet heard) primary.
        case replicating
        /// The primary's bridge fell silent; asking whether its host still holds the address.
        case checkingAddress
        /// The primary's bridge is silent but something still answers for the
        /// service address: taking it would make two hosts answer (split brain).
        case addressHeld(by: String)
        /// This host serves the service address.
        case promoted

        public var name: String {
            switch self {
            case .replicating: return "replicating"
            case .checkingAddress: return "checking-address"
            case .addressHeld: return "primary-silent-address-held"
            case .promoted: return "promoted"
            }
        }
    }

    /// What the shell must do, in order.
    public enum Action: Equatable, Sendable {
        /// Send an ARP probe for the service address and report who answers.
        case probeServiceAddress
        /// Stop relaying: translate inherited connections between the service
        /// address and the secondary's own from now on (rules first, so the
        /// kernel never sees an inherited segment it cannot place).
        case startTranslating
        /// Add the service address to the interface.
        case claimServiceAddress
        /// Announce it with gratuitous ARP, both forms, repeated.
        case announceServiceAddress
        /// Close the promiscuous capture.
        case stopCapture
        /// Prompt the stalled flows of inherited connections to move again.
        case restartFlows
    }

    /// How often to ask again while the address is held.
    public var reprobeIntervalMilliseconds: UInt64
    public private(set) var state: State = .replicating
    public private(set) var since: MonotonicTime?
    /// Why the state last changed, for `status` and the logs.
    public private(set) var reason = "started"
    private var lastProbe: MonotonicTime?

    public init(reprobeIntervalMilliseconds: UInt64 = 1000) {
        self.reprobeIntervalMilliseconds = reprobeIntervalMilliseconds
    }

    /// The fault detector declared the primary failed.
    public mutating func primaryFailed(silenceMilliseconds: UInt64, now: MonotonicTime) -> [Action] {
        guard state == .replicating else { return [] }
        move(to: .checkingAddress, now: now, reason: "primary bridge silent for \(silenceMilliseconds) ms")
        lastProbe = now
        return [.probeServiceAddress]
    }

    /// The primary's bridge spoke again before the takeover happened.
    public mutating func primaryAlive(now: MonotonicTime) {
        switch state {
        case .checkingAddress, .addressHeld:
            move(to: .replicating, now: now, reason: "primary bridge heard again")
        case .replicating, .promoted:
            break
        }
    }

    /// The ARP probe's answer: the MAC that holds the address, or nil.
    public mutating func probeAnswered(heldBy owner: String?, now: MonotonicTime) -> [Action] {
        switch state {
        case .checkingAddress, .addressHeld:
            if let owner {
                if state != .addressHeld(by: owner) {
                    move(to: .addressHeld(by: owner), now: now,
                         reason: "primary bridge silent, but \(owner) still answers ARP for the service address")
                }
                return []
            }
            move(to: .promoted, now: now, reason: "primary failed: bridge silent and nothing answers for its address")
            return [.startTranslating, .claimServiceAddress, .announceServiceAddress, .stopCapture, .restartFlows]
        case .replicating, .promoted:
            return []
        }
    }

    /// Called on every timer tick: while the address is held, ask again now and then.
    public mutating func tick(now: MonotonicTime) -> [Action] {
        guard case .addressHeld = state else { return [] }
        if let lastProbe, now.milliseconds(since: lastProbe) < reprobeIntervalMilliseconds { return [] }
        lastProbe = now
        return [.probeServiceAddress]
    }

    private mutating func move(to next: State, now: MonotonicTime, reason: String) {
        state = next
        since = now
        self.reason = reason
    }
}
