/// Which of the peer's datagrams were lost, and when to ask for them again: the receiving half
/// of the replication channel's resend protocol, pure (times in milliseconds of a monotonic
/// clock, passed in).
///
/// Every datagram carries its sender's epoch and a counter that grows by one per datagram. A
/// counter skipped is a datagram lost (on this channel, usually a secondary's segment; waiting
/// for the secondary's kernel to send it again would cost a retransmission timeout), so it is
/// asked for at once, then again after 15 ms, 30, 60, … (a resend can be lost too, and asking
/// too often would bury the very datagrams that are missing), up to ``attempts`` times. After
/// ``resynchronizeAfterSilenceMilliseconds`` of silence the peer has been away (a partition, a
/// stall): what it sent meanwhile is stale (the kernels' own retransmissions and the fault
/// detector have taken over), so the gap is not asked for.
public struct ResendTracker: Sendable {
    public static let firstRetryMilliseconds: UInt64 = 15
    public static let attempts = 7
    /// Most counters asked for again in one turn, and most remembered as missing.
    public static let retryBatch = 256
    public static let resynchronizeAfterSilenceMilliseconds: UInt64 = 100
    /// Counters remembered as missing at most (the sender keeps this many datagrams to resend).
    public let window: UInt64

    /// The peer's epoch and the counter expected next from it.
    public private(set) var expected: (epoch: UInt64, counter: UInt64)?
    /// Counters still missing, with when they were last asked for and how often.
    private var missing: [UInt64: (lastAsked: UInt64, attempts: Int)] = [:]
    private var lastHeard: UInt64?
    public private(set) var resynchronizations: UInt64 = 0
    public private(set) var abandoned: UInt64 = 0

    public init(window: UInt64) {
        self.window = window
    }

    public var missingCount: Int { missing.count }

    /// An authentic datagram arrived; returns the counters to ask for now (the gap before it).
    public mutating func received(epoch: UInt64, counter: UInt64, nowMilliseconds now: UInt64) -> [Range<UInt64>] {
        let silence = lastHeard.map { now >= $0 ? now - $0 : 0 } ?? 0
        lastHeard = now
        guard let current = expected, current.epoch == epoch else {
            // The first datagram, or the peer's process restarted: nothing before it matters.
            expected = (epoch, Self.counter(after: counter))
            missing.removeAll()
            return []
        }
        if silence >= Self.resynchronizeAfterSilenceMilliseconds, counter > current.counter {
            expected = (epoch, Self.counter(after: counter))
            missing.removeAll()
            resynchronizations += 1
            return []
        }
        missing[counter] = nil
        guard counter >= current.counter else { return [] }  // a resend, or a late one: filled
        expected = (epoch, Self.counter(after: counter))
        guard counter > current.counter else { return [] }
        let first = max(current.counter, counter - min(counter, window))
        for lost in first..<counter where missing.count < Int(window) {
            missing[lost] = (now, 1)
        }
        return first < counter ? [first..<counter] : []
    }

    /// The counter expected after `counter`. A sealer never uses `UInt64.max` (its epoch is
    /// exhausted first), but a datagram from a holder of the key can carry it: nothing is
    /// expected after it, and it must not trap.
    private static func counter(after counter: UInt64) -> UInt64 {
        counter < UInt64.max ? counter + 1 : counter
    }

    /// When a missing counter is next due to be asked for again (milliseconds, as passed in);
    /// nil while nothing is missing. The loop sleeps no longer than this.
    public var nextRetryMilliseconds: UInt64? {
        missing.values.lazy.map { $0.lastAsked + Self.retryWait(afterAttempts: $0.attempts) }.min()
    }

    /// How long after its `attempts`-th request a counter is asked for again: 15 ms, doubling up to 480 ms.
    static func retryWait(afterAttempts attempts: Int) -> UInt64 {
        firstRetryMilliseconds << UInt64(min(attempts - 1, 5))
    }

    /// The counters to ask for again now, one range per run of consecutive ones; those asked
    /// for ``attempts`` times are given up (counted in ``abandoned``).
    public mutating func due(nowMilliseconds now: UInt64) -> [Range<UInt64>] {
        guard !missing.isEmpty else { return [] }
        var due: [UInt64] = []
        for (counter, entry) in missing where due.count < Self.retryBatch {
            let wait = Self.retryWait(afterAttempts: entry.attempts)
            guard now >= entry.lastAsked, now - entry.lastAsked >= wait else { continue }
            if entry.attempts >= Self.attempts {
                missing[counter] = nil
                abandoned += 1
            } else {
                missing[counter] = (now, entry.attempts + 1)
                due.append(counter)
            }
        }
        due.sort()
        var ranges: [Range<UInt64>] = []
        var start = 0
        while start < due.count {
            var end = start + 1
            while end < due.count && due[end] == due[end - 1] + 1 && end - start < 1024 { end += 1 }
            ranges.append(due[start]..<(due[end - 1] + 1))
            start = end
        }
        return ranges
    }
}
