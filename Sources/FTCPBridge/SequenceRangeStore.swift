import FTCPWire

/// Bytes of one byte stream held beyond a moving base, possibly with holes.
///
/// The primary bridge keeps one per server and connection: bytes a server's
/// kernel produced that the other server has not yet matched. Chunks are kept
/// sorted and non-overlapping; where new bytes overlap held ones, the held
/// bytes stay (a kernel's retransmission repeats what it sent). The total is
/// bounded: bytes past the bound are refused and counted, which is safe
/// because they were never acknowledged and their sender will retransmit.
public struct SequenceRangeStore: Sendable {
    /// Contiguous held bytes: `storage[head...]`, the first of them at `start`. Bytes taken
    /// from the front only move `head`, so taking a segment's worth from a chunk of megabytes
    /// does not shift the rest; the storage is compacted once most of it is consumed.
    struct Chunk: Sendable {
        var start: SequenceNumber
        var storage: [UInt8]
        var head = 0

        init(start: SequenceNumber, bytes: [UInt8]) {
            self.start = start
            storage = bytes
        }

        var count: Int { storage.count - head }
        var bytes: ArraySlice<UInt8> { storage[head...] }
        var end: SequenceNumber { start + UInt32(count) }

        mutating func append(_ more: ArraySlice<UInt8>) { storage.append(contentsOf: more) }

        /// Forgets `length` bytes from the front.
        mutating func dropFront(_ length: Int) {
            head += length
            start = start + UInt32(length)
            if head >= 4096, head * 2 >= storage.count {
                storage.removeFirst(head)
                head = 0
            }
        }
    }

    /// Everything before `base` has been consumed.
    public private(set) var base: SequenceNumber
    private var chunks: [Chunk] = []
    /// Bytes currently held.
    public private(set) var count: Int = 0
    /// The most bytes the store will hold.
    public let capacity: Int

    public init(base: SequenceNumber, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    public var isEmpty: Bool { chunks.isEmpty }

    /// The end of the furthest byte held, or `base` if nothing is held.
    public var highestEnd: SequenceNumber { chunks.last?.end ?? base }

    /// Adds `bytes` starting at `start`. Bytes before `base` or already held
    /// are ignored. Returns how many bytes were refused for lack of room.
    @discardableResult
    public mutating func insert(_ bytes: ArraySlice<UInt8>, at start: SequenceNumber) -> Int {
        var position = start
        var rest = bytes
        let behind = position.distance(to: base)
        if behind > 0 {
            if Int(behind) >= rest.count { return 0 }
            rest = rest.dropFirst(Int(behind))
            position = base
        }
        var refused = 0
        while !rest.isEmpty {
            let index = chunks.firstIndex { position < $0.end } ?? chunks.count
            if index < chunks.count && chunks[index].start <= position {
                // Already held: keep the held bytes.
                let skip = min(rest.count, Int(position.distance(to: chunks[index].end)))
                rest = rest.dropFirst(skip)
                position = position + UInt32(skip)
                continue
            }
            let gap =
                index < chunks.count ? min(rest.count, Int(position.distance(to: chunks[index].start))) : rest.count
            let take = min(gap, capacity - count)
            refused += gap - take
            if take > 0 {
                let piece = rest.prefix(take)
                if index > 0 && chunks[index - 1].end == position {
                    chunks[index - 1].append(piece)
                } else {
                    chunks.insert(Chunk(start: position, bytes: Array(piece)), at: index)
                }
                count += take
                // Join with the following chunk when the new bytes reach it.
                let joined = index > 0 && chunks[index - 1].end == position + UInt32(take) ? index - 1 : index
                if joined + 1 < chunks.count && chunks[joined].end == chunks[joined + 1].start {
                    chunks[joined].append(chunks[joined + 1].bytes)
                    chunks.remove(at: joined + 1)
                }
            }
            rest = rest.dropFirst(gap)
            position = position + UInt32(gap)
        }
        return refused
    }

    /// How many bytes are held contiguously from `base`.
    public var contiguousCount: Int {
        guard let first = chunks.first, first.start == base else { return 0 }
        return first.count
    }

    /// Removes and returns `length` contiguous bytes from `base` (at most `contiguousCount`).
    public mutating func take(_ length: Int) -> [UInt8] {
        let length = min(length, contiguousCount)
        guard length > 0 else { return [] }
        let taken = Array(chunks[0].bytes.prefix(length))
        if length == chunks[0].count {
            chunks.removeFirst()
        } else {
            chunks[0].dropFront(length)
        }
        base = base + UInt32(length)
        count -= length
        return taken
    }

    /// Moves the base forward to `newBase`, discarding held bytes before it.
    public mutating func advance(to newBase: SequenceNumber) {
        guard base < newBase else { return }
        while let first = chunks.first, first.start < newBase {
            if first.end <= newBase {
                count -= first.count
                chunks.removeFirst()
            } else {
                let drop = Int(first.start.distance(to: newBase))
                chunks[0].dropFront(drop)
                count -= drop
            }
        }
        base = newBase
    }

    /// Discards everything held.
    public mutating func removeAll() {
        chunks.removeAll()
        count = 0
    }
}
