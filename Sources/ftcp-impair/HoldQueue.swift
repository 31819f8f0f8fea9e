/// The packets ftcp-impair holds, ordered by the time their verdict is due.
///
/// Every packet is held either the base delay or the base delay plus the reorder gap. Both are
/// constant, so within each class deadlines rise with arrival time: two FIFOs, each already
/// sorted, replace a priority queue, and popping is the merge of their heads. Packets of the
/// same class never overtake each other; a packet given the gap is overtaken by later ones.
struct HoldQueue {
    /// One held packet: its NFQUEUE id and when its verdict is due.
    struct Entry {
        var id: UInt32
        var due: ContinuousClock.Instant
    }

    private var onTime = FIFO()
    private var late = FIFO()

    /// How many packets are held.
    var count: Int { onTime.count + late.count }

    /// The earliest deadline, if anything is held.
    var nextDue: ContinuousClock.Instant? {
        switch (onTime.first?.due, late.first?.due) {
        case let (a?, b?): return min(a, b)
        case let (a?, nil): return a
        case let (nil, b?): return b
        default: return nil
        }
    }

    /// Holds a packet; `late` entries are the ones given the extra reorder gap.
    mutating func hold(_ entry: Entry, late isLate: Bool) {
        if isLate { late.append(entry) } else { onTime.append(entry) }
    }

    /// Removes and returns, earliest first, every entry due at or before `now`.
    mutating func popDue(now: ContinuousClock.Instant) -> [Entry] {
        var due: [Entry] = []
        while true {
            let a = onTime.first.flatMap { $0.due <= now ? $0 : nil }
            let b = late.first.flatMap { $0.due <= now ? $0 : nil }
            switch (a, b) {
            case let (x?, y?):
                if x.due <= y.due { due.append(onTime.removeFirst()) } else { due.append(late.removeFirst()) }
            case (_?, nil):
                due.append(onTime.removeFirst())
            case (nil, _?):
                due.append(late.removeFirst())
            case (nil, nil):
                return due
            }
        }
    }

    /// Removes and returns everything held (for a clean exit).
    mutating func removeAll() -> [Entry] {
        var all = onTime.drain()
        all += late.drain()
        return all
    }

    /// An array used as a queue: a moving head index, compacted when half of it is consumed.
    private struct FIFO {
        private var storage: [Entry] = []
        private var head = 0

        var count: Int { storage.count - head }
        var first: Entry? { head < storage.count ? storage[head] : nil }

        mutating func append(_ entry: Entry) { storage.append(entry) }

        mutating func removeFirst() -> Entry {
            let entry = storage[head]
            head += 1
            if head == storage.count {
                storage.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024, head * 2 >= storage.count {
                storage.removeFirst(head)
                head = 0
            }
            return entry
        }

        mutating func drain() -> [Entry] {
            let rest = Array(storage[head...])
            storage.removeAll()
            head = 0
            return rest
        }
    }
}
