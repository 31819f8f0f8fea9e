/// Decides when the other bridge has failed, from what this bridge hears.
///
/// Pure and clock-free: the shell reports every authenticated message from
/// the peer (`heard`) and any other evidence that the peer is alive
/// (`sawEvidence`, for example the primary's segments to clients seen on the
/// wire by the secondary), and calls `check` on every timer tick. The peer
/// counts as failed after `timeoutMilliseconds` without either; a peer never
/// heard from is declared failed only when asked to (``checkNeverHeard(since:now:)``,
/// the primary's choice; a secondary started alone waits for its peer instead of
/// taking over its address).
public struct FaultDetector: Sendable {
    /// Detection settings.
    public struct Configuration: Equatable, Sendable {
        /// How often each bridge sends a heartbeat.
        public var heartbeatIntervalMilliseconds: UInt64
        /// Heartbeats that may be missed in a row before the peer counts as failed.
        public var missedHeartbeats: UInt64

        public init(heartbeatIntervalMilliseconds: UInt64 = 10, missedHeartbeats: UInt64 = 8) {
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.missedHeartbeats = missedHeartbeats
        }

        /// Silence after which the peer counts as failed.
        public var timeoutMilliseconds: UInt64 { heartbeatIntervalMilliseconds * missedHeartbeats }
    }

    /// What this bridge believes about its peer.
    public enum PeerState: String, Equatable, Sendable {
        /// Not heard from since this bridge started.
        case unknown
        case alive
        case failed
    }

    public let configuration: Configuration
    public private(set) var state: PeerState = .unknown
    public private(set) var lastHeard: MonotonicTime?
    public private(set) var lastEvidence: MonotonicTime?
    private var lastTurn: MonotonicTime?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// An authenticated message from the peer arrived.
    public mutating func heard(now: MonotonicTime) -> PeerState? {
        lastHeard = now
        return transition(to: .alive)
    }

    /// Something other than the replication channel showed the peer alive.
    /// It keeps an alive peer alive but does not revive a failed one: only
    /// the peer's own bridge speaking again does that.
    public mutating func sawEvidence(now: MonotonicTime) {
        lastEvidence = now
    }

    /// Called at the top of every turn of the bridge's loop. If this bridge itself was not
    /// running for a while (the host was busy, the process was descheduled), the peer's
    /// messages of that time are still waiting unread: that time does not count as the peer's
    /// silence, or a busy host would declare a healthy peer dead.
    public mutating func turn(now: MonotonicTime) {
        defer { lastTurn = now }
        guard let lastTurn else { return }
        let gap = now.milliseconds(since: lastTurn)
        let allowance = configuration.heartbeatIntervalMilliseconds * 2
        guard gap > allowance else { return }
        let lost = gap - configuration.heartbeatIntervalMilliseconds
        lastHeard = lastHeard.map { $0.adding(milliseconds: lost) }
        lastEvidence = lastEvidence.map { $0.adding(milliseconds: lost) }
    }

    /// Returns the new state if the peer just failed.
    public mutating func check(now: MonotonicTime) -> PeerState? {
        guard state == .alive else { return nil }
        let latest = [lastHeard, lastEvidence].compactMap { $0 }.max() ?? now
        guard now.milliseconds(since: latest) >= configuration.timeoutMilliseconds else { return nil }
        return transition(to: .failed)
    }

    /// For the primary: a secondary not heard within the detection time of `start` (this
    /// bridge's start) counts as failed, so the primary serves alone instead of waiting for a
    /// peer that may never come. Returns `.failed` once. The secondary never calls this: a
    /// primary it never heard is no reason to take an address over.
    public mutating func checkNeverHeard(since start: MonotonicTime, now: MonotonicTime) -> PeerState? {
        guard state == .unknown, now.milliseconds(since: start) >= configuration.timeoutMilliseconds else { return nil }
        return transition(to: .failed)
    }

    /// Milliseconds since the peer's bridge last spoke, if it ever did.
    public func silenceMilliseconds(now: MonotonicTime) -> UInt64? {
        lastHeard.map { now.milliseconds(since: $0) }
    }

    private mutating func transition(to next: PeerState) -> PeerState? {
        guard next != state else { return nil }
        state = next
        return next
    }
}
