import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("The byte store behind each server's output queue")
struct SequenceRangeStoreTests {
    @Test("out-of-order pieces join into one contiguous run")
    func joinsPieces() {
        var store = SequenceRangeStore(base: SequenceNumber(100), capacity: 1000)
        store.insert(ArraySlice([4, 5, 6]), at: SequenceNumber(103))
        #expect(store.contiguousCount == 0)
        store.insert(ArraySlice([1, 2, 3]), at: SequenceNumber(100))
        #expect(store.contiguousCount == 6)
        #expect(store.take(6) == [1, 2, 3, 4, 5, 6])
        #expect(store.base == SequenceNumber(106))
        #expect(store.isEmpty)
    }

    @Test("a long stream taken a segment at a time while more arrives, with holes, comes out whole and in order")
    func longStreamTakenInSegments() {
        // Enough bytes that the chunk's consumed front is compacted many times.
        let stream = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        var store = SequenceRangeStore(base: SequenceNumber(4_294_900_000), capacity: 1 << 20)
        var out: [UInt8] = []
        var offset = 0
        var generator = MergePropertyTests.Generator(state: 9)
        while out.count < stream.count {
            // Arrive in 1,448-byte pieces, sometimes one piece ahead of its predecessor.
            if offset < stream.count {
                let length = min(1448, stream.count - offset)
                let ahead = offset + length < stream.count && generator.next() % 4 == 0
                if ahead {
                    let next = min(1448, stream.count - offset - length)
                    store.insert(
                        stream[(offset + length)..<(offset + length + next)],
                        at: SequenceNumber(4_294_900_000) + UInt32(offset + length)
                    )
                }
                store.insert(stream[offset..<(offset + length)], at: SequenceNumber(4_294_900_000) + UInt32(offset))
                offset += length
            }
            out += store.take(Int(generator.next() % 3000))
            if offset >= stream.count { out += store.take(store.contiguousCount) }
        }
        #expect(out == stream)
        #expect(store.isEmpty && store.count == 0)
    }

    @Test("bytes already held or already taken are ignored; the held copy wins")
    func duplicatesIgnored() {
        var store = SequenceRangeStore(base: SequenceNumber(0), capacity: 1000)
        store.insert(ArraySlice([1, 2, 3, 4]), at: SequenceNumber(0))
        _ = store.take(2)
        store.insert(ArraySlice([9, 9, 9, 9, 5]), at: SequenceNumber(0))
        #expect(store.count == 3)
        #expect(store.take(3) == [3, 4, 5])
    }

    @Test("a piece that bridges a hole merges both neighbours")
    func bridgesHole() {
        var store = SequenceRangeStore(base: SequenceNumber(0), capacity: 1000)
        store.insert(ArraySlice([0, 1]), at: SequenceNumber(0))
        store.insert(ArraySlice([6, 7]), at: SequenceNumber(6))
        store.insert(ArraySlice([1, 2, 3, 4, 5, 6]), at: SequenceNumber(1))
        #expect(store.contiguousCount == 8)
        #expect(store.take(8) == [0, 1, 2, 3, 4, 5, 6, 7])
    }

    @Test("the capacity refuses the excess and reports how much")
    func capacity() {
        var store = SequenceRangeStore(base: SequenceNumber(0), capacity: 5)
        #expect(store.insert(ArraySlice([1, 2, 3, 4, 5, 6, 7]), at: SequenceNumber(0)) == 2)
        #expect(store.count == 5)
        #expect(store.insert(ArraySlice([8]), at: SequenceNumber(10)) == 1)
    }

    @Test("works across the 2^32 wrap")
    func wrap() {
        var store = SequenceRangeStore(base: SequenceNumber(UInt32.max - 1), capacity: 100)
        store.insert(ArraySlice([3, 4]), at: SequenceNumber(0))
        store.insert(ArraySlice([1, 2]), at: SequenceNumber(UInt32.max - 1))
        #expect(store.take(4) == [1, 2, 3, 4])
        #expect(store.base == SequenceNumber(2))
    }

    @Test("advancing the base drops what lies before it")
    func advance() {
        var store = SequenceRangeStore(base: SequenceNumber(0), capacity: 100)
        store.insert(ArraySlice([1, 2, 3, 4, 5]), at: SequenceNumber(0))
        store.advance(to: SequenceNumber(3))
        #expect(store.count == 2)
        #expect(store.take(2) == [4, 5])
    }

    @Test("matches a simple model for random inserts and takes")
    func model() {
        var rng = MergePropertyTests.Generator(state: 42)
        for _ in 0..<200 {
            let base = UInt32.random(in: 0...UInt32.max, using: &rng)
            let stream = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var store = SequenceRangeStore(base: SequenceNumber(base), capacity: 10_000)
            var have = [Bool](repeating: false, count: stream.count)
            var taken = 0
            for _ in 0..<30 {
                let start = Int.random(in: 0..<stream.count, using: &rng)
                let end = min(stream.count, start + Int.random(in: 1...60, using: &rng))
                store.insert(ArraySlice(stream[start..<end]), at: SequenceNumber(base &+ UInt32(start)))
                for i in start..<end where i >= taken { have[i] = true }
                let run = have[taken...].prefix { $0 }.count
                #expect(store.contiguousCount == run)
                if Bool.random(using: &rng) {
                    let n = Int.random(in: 0...run, using: &rng)
                    #expect(store.take(n) == Array(stream[taken..<(taken + n)]))
                    taken += n
                }
                #expect(store.count == have[taken...].filter { $0 }.count)
            }
        }
    }
}
