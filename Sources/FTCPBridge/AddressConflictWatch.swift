/// The primary's check that nobody else holds its service address, while it hears no
/// secondary.
///
/// The primary cannot tell a dead secondary from its own cut-off link: both are silence. If
/// its own link was down, the secondary may have taken the address over, and with the service
/// address on both hosts the promoted secondary's messages to that address stay on its own
/// host, so the channel cannot tell the primary either. So when it begins to serve without a
/// secondary the primary first **confirms** that the address is still its own: a round of ARP
/// probes for it (`probes` of them, `probeIntervalMilliseconds` apart, the last one given as
/// long to be answered), during which its kernel's segments to clients are held back (TCP
/// sends them again). A round that cannot be sent (its link is down) starts over. Once a
/// round goes unanswered it serves alone and keeps **watching**: a probe every
/// `fastIntervalMilliseconds` for `fastPeriodMilliseconds`, then every
/// `slowIntervalMilliseconds`. Any other host that answers from the address holds it, and the
/// primary yields (`PrimaryDaemon`).
///
/// Pure: the shell calls ``start(now:)`` when the primary begins to serve without a
/// secondary, ``stop()`` when a secondary speaks, ``probeDue(now:)`` on every turn and
/// ``probeFailed(now:)`` when a probe could not be sent.
public struct AddressConflictWatch: Sendable {
    public enum Phase: Equatable, Sendable {
        case idle
        case confirming
        case watching
    }

    public let probes: Int
    public let probeIntervalMilliseconds: UInt64
    public let fastIntervalMilliseconds: UInt64
    public let fastPeriodMilliseconds: UInt64
    public let slowIntervalMilliseconds: UInt64
    /// Longest the output is held while no round can be completed (probes that cannot leave):
    /// past it the primary serves and watches anyway. Its own link down for longer is then
    /// covered by the watch and by the secondary announcing the address again; a primary that
    /// held its clients' output for good because of a failing ARP socket would be worse.
    public let maximumConfirmingMilliseconds: UInt64
    public private(set) var phase: Phase = .idle
    private var started: MonotonicTime?
    private var lastProbe: MonotonicTime?
    private var sentInRound = 0

    public init(
        probes: Int = 3,
        probeIntervalMilliseconds: UInt64 = 5,
        fastIntervalMilliseconds: UInt64 = 50,
        fastPeriodMilliseconds: UInt64 = 3_000,
        slowIntervalMilliseconds: UInt64 = 1_000,
        maximumConfirmingMilliseconds: UInt64 = 3_000
    ) {
        self.maximumConfirmingMilliseconds = maximumConfirmingMilliseconds
        self.probes = max(1, probes)
        self.probeIntervalMilliseconds = probeIntervalMilliseconds
        self.fastIntervalMilliseconds = fastIntervalMilliseconds
        self.fastPeriodMilliseconds = fastPeriodMilliseconds
        self.slowIntervalMilliseconds = slowIntervalMilliseconds
    }

    /// Whether probes go out (the primary serves, or is about to, without a secondary).
    public var isWatching: Bool { phase != .idle }
    /// Whether the primary's segments to clients are held back until the address is confirmed.
    public var holdsOutput: Bool { phase == .confirming }

    public mutating func start(now: MonotonicTime) {
        guard phase == .idle else { return }
        phase = .confirming
        started = now
        lastProbe = nil
        sentInRound = 0
    }

    public mutating func stop() {
        phase = .idle
        started = nil
        lastProbe = nil
        sentInRound = 0
    }

    /// A probe could not be sent (the link is down): the confirming round starts over.
    public mutating func probeFailed(now: MonotonicTime) {
        guard phase == .confirming else { return }
        sentInRound = 0
    }

    /// Whether a probe is due now; if so it counts as sent. Ends a confirming round that
    /// went unanswered (the shell reads answers before it asks).
    public mutating func probeDue(now: MonotonicTime) -> Bool {
        guard let started else { return false }
        switch phase {
        case .idle:
            return false
        case .confirming:
            if now.milliseconds(since: started) >= maximumConfirmingMilliseconds {
                phase = .watching
                self.started = now
                lastProbe = now
                return true
            }
            if let lastProbe, now.milliseconds(since: lastProbe) < probeIntervalMilliseconds { return false }
            if sentInRound >= probes {
                phase = .watching
                self.started = now
                return false
            }
            sentInRound += 1
            lastProbe = now
            return true
        case .watching:
            let interval =
                now.milliseconds(since: started) < fastPeriodMilliseconds
                ? fastIntervalMilliseconds : slowIntervalMilliseconds
            if let lastProbe, now.milliseconds(since: lastProbe) < interval { return false }
            lastProbe = now
            return true
        }
    }
}
