/// Which entry a full connection table gives up for a new connection: the oldest of those that
/// cost a client nothing to lose (a handshake the client never completed, a connection already
/// closed), so that a flood of SYNs that are never acknowledged, from any number of sources,
/// cannot lock legitimate clients out: each new SYN takes the place of the oldest flood entry,
/// as a kernel's SYN queue drops its oldest request when full.
///
/// Pure. The candidates are found by a scan of the table, oldest first, and used up one by one,
/// each checked again before it is given (it may have completed its handshake meanwhile); the
/// next scan comes when they are used up, and, after a scan that found none (every entry an
/// established connection), not before ``rescanAfterNothingMilliseconds`` (new SYNs are
/// dropped meanwhile, as they were before), so a flood against a table full of established
/// connections costs no scan per SYN.
struct EvictionOrder<Key: Hashable & Sendable>: Sendable {
    static var rescanAfterNothingMilliseconds: UInt64 { 100 }

    private var queue: [Key] = []
    private var head = 0
    private var lastFruitlessScan: MonotonicTime?
    private(set) var scans: UInt64 = 0

    /// The next key of `table` to give up, or nil if none may go: `evictableSince` gives an
    /// entry's age reference if it may go, nil if not.
    mutating func next<Value>(
        in table: [Key: Value],
        now: MonotonicTime,
        evictableSince: (Value) -> MonotonicTime?
    ) -> Key? {
        next(
            now: now,
            candidates: { table.compactMap { key, value in evictableSince(value).map { (key, $0) } } },
            stillEvictable: { table[$0].flatMap(evictableSince) != nil }
        )
    }

    /// The next entry to give up, or nil if none may go. `candidates` lists every evictable
    /// entry with its age reference; `stillEvictable` checks one again.
    mutating func next(
        now: MonotonicTime,
        candidates: () -> [(key: Key, since: MonotonicTime)],
        stillEvictable: (Key) -> Bool
    ) -> Key? {
        for pass in 0..<2 {
            while head < queue.count {
                let key = queue[head]
                head += 1
                if stillEvictable(key) { return key }
            }
            guard pass == 0 else { break }
            if let last = lastFruitlessScan, now.milliseconds(since: last) < Self.rescanAfterNothingMilliseconds {
                return nil
            }
            scans += 1
            queue = candidates().sorted { $0.since < $1.since }.map(\.key)
            head = 0
            lastFruitlessScan = queue.isEmpty ? now : nil
        }
        return nil
    }
}
