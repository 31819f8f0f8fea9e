/// What a heartbeat says besides "alive" (the state code on the replication channel).
public enum HeartbeatSignal: UInt8, Sendable {
    /// Nothing more: replicating, or serving.
    case normal = 1
    /// From a node that took the service address over (the older form, where it stays the
    /// secondary): a primary that hears it yields.
    case promoted = 3
    /// From the primary: it has released the service address for a planned switchover; the
    /// secondary takes over at once.
    case handingOver = 4
    /// From the secondary: the operator asked it for a switchover.
    case switchoverRequested = 5
}

/// A node's control plane as one state machine: which role it plays, when it speaks, when it
/// judges its peer failed, when and how it takes the service address over or gives it up.
///
/// Pure, like the bridge cores: the shell reports what happened (a turn of its loop began, the
/// peer's authenticated message, a host seen using the service address, an operator's request)
/// with the time, carries out the returned actions in order, and sleeps until
/// ``nextDeadline(now:)``. Roles are states of it:
///
/// | role | state | what moves it on |
/// |---|---|---|
/// | secondary | replicating, checking-address, primary-silent-address-held (``TakeoverCoordinator``) | the primary's silence and a round of unanswered probes, or its hand-over: a takeover; with a service address of its own the node then serves as primary |
/// | primary | waiting-for-secondary, alone, replicating | the secondary's voice (replicating) or silence (alone); a switchover: it hands the address over and serves as secondary |
/// | either | fenced | another host serves the address after a takeover this node missed |
///
/// The same machine drives the daemons and the in-process tests that run two nodes on a
/// simulated segment (`NodePairTests`), so a failover, a rejoin and a switchover are unit tests.
public struct NodeController: Sendable {
    public enum Role: String, Sendable {
        case primary, secondary
    }

    /// Where a node playing the primary stands.
    public enum PrimaryState: String, Sendable {
        /// Started; no secondary heard yet (new connections wait for it up to the detection time).
        case waiting = "waiting-for-secondary"
        /// No secondary: serving unprotected.
        case alone
        /// A secondary replicates new connections.
        case replicating
    }

    public struct Configuration: Sendable {
        public var heartbeatIntervalMilliseconds: UInt64
        /// Heartbeats missed before the peer counts as failed, in each role (see
        /// `DaemonConfiguration.defaultMissedHeartbeats`).
        public var primaryMissedHeartbeats: UInt64
        public var secondaryMissedHeartbeats: UInt64
        public var takeoverProbes: TakeoverCoordinator.ProbeSettings
        /// A service address of its own: a node that takes it over goes on as primary, and a
        /// switchover can move it.
        public var rolesSwap: Bool
        /// How often connections are checked for expiry.
        public var expiryIntervalMilliseconds: UInt64

        public init(
            heartbeatIntervalMilliseconds: UInt64 = 10,
            primaryMissedHeartbeats: UInt64 = 8,
            secondaryMissedHeartbeats: UInt64 = 2,
            takeoverProbes: TakeoverCoordinator.ProbeSettings = .init(),
            rolesSwap: Bool,
            expiryIntervalMilliseconds: UInt64 = 1_000
        ) {
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.primaryMissedHeartbeats = primaryMissedHeartbeats
            self.secondaryMissedHeartbeats = secondaryMissedHeartbeats
            self.takeoverProbes = takeoverProbes
            self.rolesSwap = rolesSwap
            self.expiryIntervalMilliseconds = expiryIntervalMilliseconds
        }

        func detection(for role: Role) -> FaultDetector.Configuration {
            FaultDetector.Configuration(
                heartbeatIntervalMilliseconds: heartbeatIntervalMilliseconds,
                missedHeartbeats: role == .primary ? primaryMissedHeartbeats : secondaryMissedHeartbeats
            )
        }
    }

    /// What the shell must do, in order.
    public enum Action: Equatable, Sendable {
        case sendHeartbeat(HeartbeatSignal)
        /// One ARP probe for the service address (then ``probeSent(now:)`` or ``probeFailed(now:)``).
        case probeServiceAddress
        /// One gratuitous ARP for the service address (both forms).
        case announceServiceAddress
        case claimServiceAddress
        case releaseServiceAddress(reason: String)
        /// The takeover's steps on the secondary (``TakeoverCoordinator/Action``).
        case startTranslating
        case restartFlows
        case stopCapture
        /// The primary's bridge goes on alone: the secondary failed or never spoke.
        case serveAlone(reason: String)
        /// The primary's bridge replicates new connections again; `afterAlone`: it served alone.
        case replicate(afterAlone: Bool)
        /// The secondary's bridge process restarted (a new epoch): its replicas are gone.
        case secondaryRestarted
        /// The secondary's bridge: the primary fell silent (a round of probes follows).
        case primarySilent(milliseconds: UInt64)
        /// The secondary's bridge: the primary spoke again before a takeover (`wasSuspected`)
        /// or while this node holds the address (after a takeover in the older form).
        case primaryHeard(whilePromoted: Bool, wasSuspected: Bool)
        /// Another host answers for, or uses, the service address: for the log.
        case addressUsedElsewhere(by: String, response: ConflictResponse)
        /// Give the address up for good: another host serves it after a takeover this node missed.
        case fence(reason: String)
        /// The role changed (after a takeover with a service address of its own, or after
        /// handing the address over): the shell moves on to the other role's loop.
        case becomePrimary
        case becomeSecondary
        /// The secondary asks for a switchover in its heartbeats: the shell checks what it would
        /// lose and calls ``switchoverRequested(by:force:unreplicatedConnections:now:)``.
        case switchoverAskedByPeer
        /// A switchover accepted earlier in the turn could not happen after all.
        case switchoverRefused(requester: String, reason: String)
        /// Time to expire idle connections.
        case expire
    }

    /// How this node answered another host's use of the service address.
    public enum ConflictResponse: String, Sendable {
        /// Before a takeover: the address is still held, no takeover.
        case noTakeover
        /// This node serves it after a takeover: it announces it again, and the other yields.
        case announcedAgain
        /// A primary hearing no secondary: it checks with probes whether it still holds it.
        case checking
        /// Already yielded, or not this node's business.
        case ignored
    }

    /// How long a secondary with a service address of its own waits for a first primary before
    /// it checks whether anybody serves the address: long enough for a primary started at the
    /// same moment to be up and speaking (its own start-up probe alone takes 200 ms).
    public static let neverHeardPrimaryMilliseconds: UInt64 = 2_000

    public let configuration: Configuration
    public private(set) var role: Role
    public private(set) var primaryState: PrimaryState = .waiting
    public private(set) var detector: FaultDetector
    public private(set) var takeover: TakeoverCoordinator
    public private(set) var conflictWatch = AddressConflictWatch()
    /// Set once this node gave the address up to a peer that took it over.
    public private(set) var fenced = false
    /// This node holds the address because it took it over, and no secondary has joined
    /// since: another host using it is the old primary come back, which yields.
    public private(set) var winsAddressConflicts = false
    /// When the present role began (the primary waits this long for a first secondary).
    public private(set) var roleSince: MonotonicTime
    /// Why the state last changed, for `status`.
    public private(set) var reason: String
    private var nextHeartbeat: MonotonicTime
    private var nextExpiry: MonotonicTime
    private var announcements: (count: Int, intervalMilliseconds: UInt64, start: MonotonicTime, sent: Int)?
    private var peerEpoch: UInt64?
    private var switchoverPendingBy: String?
    private var askSwitchoverUntil: MonotonicTime?

    /// - Parameter tookOver: a primary that begins by taking the address over (it serves alone,
    ///   wins conflicts until a secondary joins).
    public init(role: Role, configuration: Configuration, now: MonotonicTime) {
        self.configuration = configuration
        self.role = role
        detector = FaultDetector(configuration: configuration.detection(for: role))
        takeover = TakeoverCoordinator(probes: configuration.takeoverProbes)
        roleSince = now
        reason =
            role == .primary
            ? "started; new connections wait for the secondary for at most the detection time" : "started"
        nextHeartbeat = now
        nextExpiry = now.adding(milliseconds: configuration.expiryIntervalMilliseconds)
    }

    /// The state's name, as `status` and the guardian show it.
    public var stateName: String { role == .primary ? primaryState.rawValue : takeover.state.name }

    /// A primary not yet sure the address is still its own sends nothing to clients.
    public var holdsOutput: Bool { role == .primary && conflictWatch.holdsOutput }

    /// Whether the shell should read the ARP socket on every turn (not only when poll says so):
    /// while probing, an answer must never sit unread past its round.
    public var watchesAddress: Bool {
        switch role {
        case .primary: return conflictWatch.isWatching
        case .secondary: return takeover.state != .replicating && takeover.state != .promoted
        }
    }

    // MARK: Events

    /// A turn of the shell's loop begins: time the bridge itself did not run is not the peer's
    /// silence; a heartbeat, when due, goes first, before the turn's work.
    public mutating func beginTurn(now: MonotonicTime) -> [Action] {
        detector.turn(now: now)
        // Not while confirming the address: a heartbeat makes the kernel ARP for the peer from
        // the service address, which turns clients' ARP caches here even if another host serves.
        guard nextHeartbeat <= now, !holdsOutput, !fenced else { return [] }
        nextHeartbeat = now.adding(milliseconds: configuration.heartbeatIntervalMilliseconds)
        return [.sendHeartbeat(signal(now: now))]
    }

    private func signal(now: MonotonicTime) -> HeartbeatSignal {
        switch role {
        case .primary:
            return .normal
        case .secondary:
            if takeover.state == .promoted { return .promoted }
            if let until = askSwitchoverUntil, now < until { return .switchoverRequested }
            return .normal
        }
    }

    /// An authenticated message from the peer; `heartbeat` is what it said if it was a
    /// heartbeat, `epoch` the peer's epoch on the channel.
    public mutating func peerMessage(heartbeat: HeartbeatSignal?, epoch: UInt64?, now: MonotonicTime) -> [Action] {
        switch role {
        case .primary: return primaryHeard(heartbeat: heartbeat, epoch: epoch, now: now)
        case .secondary: return secondaryHeard(heartbeat: heartbeat, now: now)
        }
    }

    private mutating func primaryHeard(heartbeat: HeartbeatSignal?, epoch: UInt64?, now: MonotonicTime) -> [Action] {
        // The old primary's last words of a switchover, late (its three hand-overs leave
        // together, and the first already made this node primary): not a secondary's voice.
        // Counted as one, its silence while it restarts as the secondary would send this node
        // alone again, through a confirming round that holds every client's segments back.
        if heartbeat == .handingOver { return [] }
        var actions: [Action] = []
        if detector.heard(now: now) == .alive {
            conflictWatch.stop()
            winsAddressConflicts = false
            let wasAlone = primaryState == .alone
            primaryState = .replicating
            reason = wasAlone ? "secondary joined: connections opened from now on are protected" : "secondary heard"
            roleSince = now
            actions.append(.replicate(afterAlone: wasAlone))
        }
        if let epoch {
            // A new epoch from a secondary counted alive: its bridge restarted faster than the
            // detection time, and what it replicated is gone with the old process.
            if let previous = peerEpoch, previous != epoch, primaryState != .alone {
                actions.append(.secondaryRestarted)
            }
            peerEpoch = epoch
        }
        switch heartbeat {
        case .switchoverRequested? where switchoverPendingBy == nil:
            actions.append(.switchoverAskedByPeer)
        case .promoted? where !fenced:
            // The secondary took the address over while this host was cut off from it, and
            // the partition healed: its clients followed its gratuitous ARP and it holds every
            // replica, so this one yields.
            fenced = true
            actions.append(.fence(reason: "the secondary announces that it serves the service address"))
        default:
            break
        }
        return actions
    }

    private mutating func secondaryHeard(heartbeat: HeartbeatSignal?, now: MonotonicTime) -> [Action] {
        if heartbeat == .handingOver {
            // The primary's last words before it becomes the secondary: take over at once.
            askSwitchoverUntil = nil
            return takeOver(takeover.primaryHandedOver(now: now), now: now)
        }
        guard detector.heard(now: now) == .alive else { return [] }
        let whilePromoted = takeover.state == .promoted
        let wasSuspected = takeover.state != .replicating && !whilePromoted
        takeover.primaryAlive(now: now)
        if whilePromoted { startAnnouncing(count: 3, intervalMilliseconds: 20, now: now, unlessUnderWay: true) }
        return whilePromoted || wasSuspected
            ? [.primaryHeard(whilePromoted: whilePromoted, wasSuspected: wasSuspected)] : []
    }

    /// Another host was seen using the service address: answering an ARP probe for it,
    /// announcing it, or probing for it (the shell reads the ARP socket before ``tick(now:)``).
    public mutating func addressUsedElsewhere(by owner: String, now: MonotonicTime) -> [Action] {
        switch role {
        case .primary:
            guard !fenced else { return [] }
            if winsAddressConflicts {
                // The old primary back on the segment: it finds the address held and yields;
                // clients must keep sending here.
                startAnnouncing(count: 3, intervalMilliseconds: 20, now: now, unlessUnderWay: true)
                return [.addressUsedElsewhere(by: owner, response: .announcedAgain)]
            }
            guard conflictWatch.isWatching else {
                // Heard while the secondary is heard (its link came back just as the secondary
                // claimed the address, say): hold output and ask at once.
                conflictWatch.start(now: now)
                return [.addressUsedElsewhere(by: owner, response: .checking)]
            }
            fenced = true
            return [
                .fence(
                    reason:
                        "\(owner) answers for the service address while no secondary is heard: the secondary took it over while this host was cut off"
                )
            ]
        case .secondary:
            switch takeover.state {
            case .checkingAddress, .addressHeld:
                takeover.probeAnswered(heldBy: owner, now: now)
                return [.addressUsedElsewhere(by: owner, response: .noTakeover)]
            case .promoted:
                startAnnouncing(count: 3, intervalMilliseconds: 20, now: now, unlessUnderWay: true)
                return [.addressUsedElsewhere(by: owner, response: .announcedAgain)]
            case .replicating:
                return []
            }
        }
    }

    /// The shell's loop for the present role begins to listen (after setting up its queues,
    /// rules and sockets): a peer counted alive is counted so from now, since it could not be
    /// heard while the loop was not there.
    public mutating func loopStarted(now: MonotonicTime) {
        guard detector.state == .alive else { return }
        _ = detector.heard(now: now)
    }

    /// The probe asked for left at `now` (read after the send).
    public mutating func probeSent(now: MonotonicTime) {
        if role == .secondary { takeover.probeSent(now: now) }
    }

    /// The probe asked for could not be sent: it proves nothing.
    public mutating func probeFailed(error: String, now: MonotonicTime) {
        switch role {
        case .primary: conflictWatch.probeFailed(now: now)
        case .secondary: takeover.probeAnswered(heldBy: "unknown (probe not sent: \(error))", now: now)
        }
    }

    /// Checks what is due: the peer's silence, probes, announcements, the takeover, expiry.
    public mutating func tick(now: MonotonicTime) -> [Action] {
        var actions: [Action] = []
        switch role {
        case .primary:
            if detector.check(now: now) == .failed, primaryState != .alone {
                let silence = detector.silenceMilliseconds(now: now) ?? 0
                actions += goAlone(reason: "secondary bridge silent for \(silence) ms", now: now)
            }
            if detector.checkNeverHeard(since: roleSince, now: now) == .failed, primaryState != .alone {
                actions += goAlone(reason: "no secondary heard since the start", now: now)
            }
            if !fenced, conflictWatch.probeDue(now: now) { actions.append(.probeServiceAddress) }
        case .secondary:
            if detector.check(now: now) == .failed {
                let silence = detector.silenceMilliseconds(now: now) ?? 0
                actions.append(.primarySilent(milliseconds: silence))
                actions += takeOver(takeover.primaryFailed(silenceMilliseconds: silence, now: now), now: now)
            }
            // With a service address of its own, a secondary that never hears a primary does not
            // wait for one for ever (its peer down when it starts, or dead just after answering
            // its start-up probe): after ``neverHeardPrimaryMilliseconds`` it runs a probe round,
            // and takes the address over if nobody answers for it.
            if configuration.rolesSwap, detector.state == .unknown, takeover.state == .replicating,
                now.milliseconds(since: roleSince) >= Self.neverHeardPrimaryMilliseconds
            {
                actions += takeOver(
                    takeover.primaryFailed(silenceMilliseconds: now.milliseconds(since: roleSince), now: now),
                    now: now
                )
            }
            actions += takeOver(takeover.tick(now: now), now: now)
        }
        if let due = announcementsDue(now: now), !fenced {
            actions += Array(repeating: .announceServiceAddress, count: due)
        }
        if nextExpiry <= now {
            nextExpiry = now.adding(milliseconds: configuration.expiryIntervalMilliseconds)
            actions.append(.expire)
        }
        return actions
    }

    /// The end of a turn: what the turn decided for clients has been sent; a switchover asked
    /// for is carried out now.
    public mutating func endTurn(now: MonotonicTime) -> [Action] {
        guard role == .primary, let requester = switchoverPendingBy else { return [] }
        switchoverPendingBy = nil
        // The turn may have changed things since the request (the secondary fell silent).
        if let refusal = switchoverRefusal { return [.switchoverRefused(requester: requester, reason: refusal)] }
        let reason = "planned switchover asked by \(requester)"
        becomeSecondary(now: now, reason: "handed the service address over (\(reason))")
        return [
            .releaseServiceAddress(reason: reason), .sendHeartbeat(.handingOver), .sendHeartbeat(.handingOver),
            .sendHeartbeat(.handingOver), .becomeSecondary,
        ]
    }

    /// An operator (through either node's control socket) or the secondary asks for a planned
    /// switchover. `unreplicatedConnections`: open connections the peer holds no replica of,
    /// which it would lose. Returns why it is refused, or nil: on the primary it happens at the
    /// end of this turn, on the secondary the primary is asked (in heartbeats for 100 ms).
    public mutating func switchoverRequested(
        by requester: String,
        force: Bool,
        unreplicatedConnections: Int,
        now: MonotonicTime
    ) -> String? {
        switch role {
        case .primary:
            if let refusal = switchoverRefusal { return refusal }
            if unreplicatedConnections > 0 && !force {
                return """
                    \(unreplicatedConnections) open connections have no replica on the peer (inherited at a takeover, \
                    or served alone) and would be lost; wait until they close, or force it (--force)
                    """
            }
            switchoverPendingBy = requester
            return nil
        case .secondary:
            guard configuration.rolesSwap else {
                return "the service address is the primary's own (no --service-address): it cannot move"
            }
            guard takeover.state == .replicating, detector.state == .alive else {
                return "this node is not replicating behind a live primary (state \(takeover.state.name))"
            }
            askSwitchoverUntil = now.adding(milliseconds: 100)
            return nil
        }
    }

    /// Why a planned switchover cannot happen now, or nil when it can (the primary's view).
    public var switchoverRefusal: String? {
        guard role == .primary else { return "this node is not the primary" }
        if !configuration.rolesSwap {
            return "the service address is this host's own (no --service-address), so it cannot move to the peer"
        }
        if fenced { return "this node is giving the service address up" }
        if primaryState != .replicating {
            return
                "no secondary replicates (state \(primaryState.rawValue)): it would have nothing to serve the connections with"
        }
        if conflictWatch.isWatching { return "this node is checking that no other host holds the service address" }
        return nil
    }

    /// When the shell should next call in (its poll timeout): the next heartbeat, probe,
    /// announcement, expiry, or the moment the peer's silence would count as a failure.
    public func nextDeadline(now: MonotonicTime) -> MonotonicTime {
        var deadline = min(nextHeartbeat, nextExpiry)
        if let lastHeard = [detector.lastHeard, detector.lastEvidence].compactMap({ $0 }).max(),
            detector.state == .alive
        {
            deadline = min(deadline, lastHeard.adding(milliseconds: detector.configuration.timeoutMilliseconds))
        }
        if role == .primary && detector.state == .unknown {
            deadline = min(deadline, roleSince.adding(milliseconds: detector.configuration.timeoutMilliseconds))
        }
        if watchesAddress {
            let interval =
                role == .primary
                ? conflictWatch.probeIntervalMilliseconds : configuration.takeoverProbes.intervalMilliseconds
            deadline = min(deadline, now.adding(milliseconds: max(1, interval)))
        }
        if let round = announcements,
            let offset = round.sent < round.count ? UInt64(round.sent) * round.intervalMilliseconds : nil
        {
            deadline = min(deadline, round.start.adding(milliseconds: offset))
        }
        if let until = askSwitchoverUntil, now < until { deadline = min(deadline, until) }
        return max(deadline, now)
    }

    // MARK: Transitions

    private mutating func goAlone(reason: String, now: MonotonicTime) -> [Action] {
        primaryState = .alone
        self.reason = reason
        roleSince = now
        conflictWatch.start(now: now)
        return [.serveAlone(reason: reason)]
    }

    /// Maps the takeover's steps; with a service address of its own, the node then serves as
    /// primary: alone, winning conflicts until a secondary joins, its announcements going on.
    private mutating func takeOver(_ steps: [TakeoverCoordinator.Action], now: MonotonicTime) -> [Action] {
        var actions: [Action] = []
        for step in steps {
            switch step {
            case .probeServiceAddress: actions.append(.probeServiceAddress)
            case .startTranslating: actions.append(.startTranslating)
            case .claimServiceAddress: actions.append(.claimServiceAddress)
            case .announceServiceAddress:
                startAnnouncing(count: 5, intervalMilliseconds: 100, now: now, unlessUnderWay: false)
                if let due = announcementsDue(now: now) {
                    actions += Array(repeating: .announceServiceAddress, count: due)
                }
            case .restartFlows: actions.append(.restartFlows)
            case .stopCapture: actions.append(.stopCapture)
            }
        }
        if takeover.state == .promoted, steps.contains(.claimServiceAddress) {
            reason = takeover.reason
            if configuration.rolesSwap {
                becomePrimaryAfterTakeover(now: now)
                actions.append(.becomePrimary)
            }
        }
        return actions
    }

    private mutating func becomePrimaryAfterTakeover(now: MonotonicTime) {
        role = .primary
        detector = FaultDetector(configuration: configuration.detection(for: .primary))
        primaryState = .alone
        reason = "took the service address over; serving alone until the peer rejoins as secondary"
        roleSince = now
        winsAddressConflicts = true
        conflictWatch = AddressConflictWatch()
        peerEpoch = nil
        nextHeartbeat = now
    }

    private mutating func becomeSecondary(now: MonotonicTime, reason: String) {
        role = .secondary
        detector = FaultDetector(configuration: configuration.detection(for: .secondary))
        // The peer was heard a moment ago and is about to claim the address: counted alive, so
        // that if it dies before it does (or after), its silence starts a takeover back here.
        // A detector that had never heard it would wait for it for ever, and nobody would serve.
        _ = detector.heard(now: now)
        takeover = TakeoverCoordinator(probes: configuration.takeoverProbes)
        conflictWatch = AddressConflictWatch()
        winsAddressConflicts = false
        announcements = nil
        peerEpoch = nil
        self.reason = reason
        roleSince = now
        nextHeartbeat = now
    }

    /// A primary with a service address of its own claims it at the start and announces it.
    public mutating func claimedAtStart(now: MonotonicTime) {
        startAnnouncing(count: 5, intervalMilliseconds: 100, now: now, unlessUnderWay: false)
    }

    private mutating func startAnnouncing(
        count: Int,
        intervalMilliseconds: UInt64,
        now: MonotonicTime,
        unlessUnderWay: Bool
    ) {
        if unlessUnderWay && announcements != nil { return }
        announcements = (count, intervalMilliseconds, now, 0)
    }

    private mutating func announcementsDue(now: MonotonicTime) -> Int? {
        guard var round = announcements else { return nil }
        let elapsed = now.milliseconds(since: round.start)
        let reached =
            round.intervalMilliseconds == 0
            ? round.count : min(round.count, Int(elapsed / round.intervalMilliseconds) + 1)
        let due = max(0, reached - round.sent)
        round.sent = max(round.sent, reached)
        announcements = round.sent >= round.count ? nil : round
        return due > 0 ? due : nil
    }
}
