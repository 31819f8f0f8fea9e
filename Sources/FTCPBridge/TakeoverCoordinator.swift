/// The secondary's side of a failover, as a state machine: when the primary
/// falls silent, make sure it is really gone before taking its address, then
/// take over in an order that never lets the local kernel reset an
/// inherited connection (paper §5).
///
/// Pure: the shell reports what the fault detector concluded and any ARP
/// answer for the service address, calls `tick` on every turn of its loop, and
/// carries out the returned actions in order. The address is taken only after
/// a whole round of probes (`ProbeSettings`) went unanswered.
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
        /// Send one ARP probe for the service address (without waiting: any
        /// answer is reported through ``probeAnswered(heldBy:now:)``).
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

    /// How a round of ARP probes is run before the address is taken.
    public struct ProbeSettings: Equatable, Sendable {
        /// Probes per round (one lost request or answer must not pass for a dead primary).
        public var count: Int
        /// Time between probes, and after the last one, for an answer to arrive.
        public var intervalMilliseconds: UInt64
        /// While the address is held, the longest time between rounds. The first rounds
        /// follow each other quickly (the primary may have died just after answering, and
        /// every round missed is stall for the clients), then back off to this.
        public var reprobeIntervalMilliseconds: UInt64

        public init(count: Int = 3, intervalMilliseconds: UInt64 = 5, reprobeIntervalMilliseconds: UInt64 = 250) {
            self.count = max(1, count)
            self.intervalMilliseconds = intervalMilliseconds
            self.reprobeIntervalMilliseconds = reprobeIntervalMilliseconds
        }

        /// Longest a round takes when nobody answers.
        public var roundMilliseconds: UInt64 { UInt64(count) * intervalMilliseconds }
    }

    public let probes: ProbeSettings
    public private(set) var state: State = .replicating
    public private(set) var since: MonotonicTime?
    /// Why the state last changed, for `status` and the logs.
    public private(set) var reason = "started"
    /// The round of probes under way: how many were sent, and when the last one was.
    private var round: (sent: Int, last: MonotonicTime)?
    private var lastRoundStart: MonotonicTime?
    /// Rounds answered in a row since the primary's bridge fell silent.
    private var answeredRounds = 0

    public init(probes: ProbeSettings = ProbeSettings()) {
        self.probes = probes
    }

    /// The fault detector declared the primary failed: start a round of probes.
    public mutating func primaryFailed(silenceMilliseconds: UInt64, now: MonotonicTime) -> [Action] {
        guard state == .replicating else { return [] }
        move(to: .checkingAddress, now: now, reason: "primary bridge silent for \(silenceMilliseconds) ms")
        return startRound(now: now)
    }

    /// The primary says, over the authenticated channel, that it has released the service
    /// address for a planned switchover: take over at once, with no probe (nothing failed, and
    /// every moment spent checking is stall for the clients).
    /// Whether the promotion was a planned switchover (the primary handed the address over).
    public private(set) var wasHandedOver = false

    public mutating func primaryHandedOver(now: MonotonicTime) -> [Action] {
        guard state != .promoted else { return [] }
        round = nil
        wasHandedOver = true
        move(to: .promoted, now: now, reason: "planned switchover: the primary released the service address")
        return Self.takeoverActions
    }

    /// The order of a takeover (paper §5): translation first, so the kernel never sees an
    /// inherited segment it cannot place; the address; its announcement; the stalled flows
    /// restarted at once; the capture closed last.
    static let takeoverActions: [Action] = [
        .startTranslating, .claimServiceAddress, .announceServiceAddress, .restartFlows, .stopCapture,
    ]

    /// The primary's bridge spoke again before the takeover happened.
    public mutating func primaryAlive(now: MonotonicTime) {
        switch state {
        case .checkingAddress, .addressHeld:
            round = nil
            answeredRounds = 0
            move(to: .replicating, now: now, reason: "primary bridge heard again")
        case .replicating, .promoted:
            break
        }
    }

    /// Some host answered for the service address (an ARP reply, or a request it
    /// sent from that address). Before the takeover that means the address is
    /// still held: no takeover for now.
    public mutating func probeAnswered(heldBy owner: String, now: MonotonicTime) {
        switch state {
        case .checkingAddress, .addressHeld:
            if round != nil { answeredRounds += 1 }
            round = nil
            if state != .addressHeld(by: owner) {
                move(
                    to: .addressHeld(by: owner),
                    now: now,
                    reason: "primary bridge silent, but \(owner) still answers ARP for the service address"
                )
            }
        case .replicating, .promoted:
            break
        }
    }

    /// Called on every turn of the loop: sends the next probe of a round when due,
    /// takes over when a whole round went unanswered, and while the address is held
    /// starts a new round now and then.
    public mutating func tick(now: MonotonicTime) -> [Action] {
        switch state {
        case .replicating, .promoted:
            return []
        case .addressHeld:
            guard round == nil else { break }
            if let lastRoundStart, now.milliseconds(since: lastRoundStart) < reprobeDelayMilliseconds { return [] }
            return startRound(now: now)
        case .checkingAddress:
            break
        }
        guard let current = round, now.milliseconds(since: current.last) >= probes.intervalMilliseconds else {
            return []
        }
        if current.sent < probes.count {
            round = (current.sent + 1, now)
            return [.probeServiceAddress]
        }
        round = nil
        move(to: .promoted, now: now, reason: "primary failed: bridge silent and nothing answers for its address")
        return Self.takeoverActions
    }

    /// The shell sent the probe asked for at `now`, read from the clock after the send: the
    /// answer window runs from the moment the probe left, not from the start of the loop turn
    /// that asked for it (a slow turn must not eat the window).
    public mutating func probeSent(now: MonotonicTime) {
        guard let current = round, current.last < now else { return }
        round = (current.sent, now)
    }

    /// Time from the start of one round to the next while the address is held: twice the
    /// length of a round after the first answer, doubling with every answered round, up to
    /// `reprobeIntervalMilliseconds`.
    public var reprobeDelayMilliseconds: UInt64 {
        let first = 2 * probes.roundMilliseconds
        let doublings = UInt64(min(max(answeredRounds - 1, 0), 20))
        return min(probes.reprobeIntervalMilliseconds, first << doublings)
    }

    private mutating func startRound(now: MonotonicTime) -> [Action] {
        round = (1, now)
        lastRoundStart = now
        return [.probeServiceAddress]
    }

    private mutating func move(to next: State, now: MonotonicTime, reason: String) {
        state = next
        since = now
        self.reason = reason
    }
}
