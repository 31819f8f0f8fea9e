import FTCPReplication
import Testing

@Suite("Replays are dropped, reordering is not")
struct ReplayTests {
    /// `count` heartbeat datagrams from one secondary epoch, counters 0 ..< count.
    func datagrams(_ count: Int, epoch: UInt64 = 1_000) throws -> [[UInt8]] {
        var sealer = Fixtures.sealer(.secondary, epoch: epoch)
        return try (0..<count).map { _ in try sealer.seal(.heartbeat(Fixtures.heartbeat)) }
    }

    @Test("an accepted datagram sent again is a replay")
    func duplicate() throws {
        let sent = try datagrams(2)
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(sent[0]).success != nil)
        #expect(opener.open(sent[0]).failure == .replay(epoch: 1_000, counter: 0))
        #expect(opener.open(sent[1]).success != nil)
        #expect(opener.open(sent[0]).failure == .replay(epoch: 1_000, counter: 0))
        #expect(opener.open(sent[1]).failure == .replay(epoch: 1_000, counter: 1))
        #expect(opener.statistics.accepted == 2)
        #expect(opener.statistics.droppedReplay == 3)
    }

    @Test("datagrams reordered within the window are each accepted once")
    func reordering() throws {
        let sent = try datagrams(300)
        var generator = SeededGenerator(seed: 42)
        let order = Array(sent.indices).shuffled(using: &generator)
        var opener = Fixtures.opener(.primary)
        var counters: [UInt64] = []
        for index in order {
            let received = try opener.open(sent[index]).get()
            counters.append(received.counter)
        }
        #expect(counters == order.map { UInt64($0) })
        for index in order {
            #expect(opener.open(sent[index]).failure == .replay(epoch: 1_000, counter: UInt64(index)))
        }
        #expect(opener.statistics.accepted == 300)
        #expect(opener.statistics.droppedReplay == 300)
    }

    @Test("a counter at the window's far edge is accepted, one beyond it is refused")
    func windowEdge() throws {
        let size = ReplayWindow.size
        let sent = try datagrams(size + 1)
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(sent[size]).success != nil)  // newest: counter 1024
        #expect(opener.open(sent[1]).success != nil)  // 1023 behind: inside
        // 1024 behind: never seen, but outside
        #expect(opener.open(sent[0]).failure == .replay(epoch: 1_000, counter: 0))
    }

    @Test("a datagram far behind the window is a replay even if never seen")
    func farBehind() throws {
        let sent = try datagrams(2_000)
        var opener = Fixtures.opener(.primary)
        for datagram in sent[10...] {
            #expect(opener.open(datagram).success != nil)
        }
        for datagram in sent[0..<10] {
            #expect(opener.open(datagram).failure != nil)
        }
        #expect(opener.open(sent[500]).failure == .replay(epoch: 1_000, counter: 500))
        #expect(opener.statistics.droppedReplay == 11)
    }

    @Test("a restarted peer's higher epoch replaces the old one, whose datagrams are then dropped")
    func peerRestart() throws {
        let before = try datagrams(3, epoch: 1_000)
        let after = try datagrams(3, epoch: 5_000)
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(before[0]).success != nil)
        #expect(opener.open(before[1]).success != nil)
        #expect(opener.peerEpoch == 1_000)

        // The restart begins again at counter 0, which the old epoch already used.
        let restarted = try opener.open(after[0]).get()
        #expect(restarted.epoch == 5_000 && restarted.counter == 0)
        #expect(opener.peerEpoch == 5_000)
        #expect(opener.open(after[1]).success != nil)

        #expect(opener.open(before[2]).failure == .oldEpoch(received: 1_000, current: 5_000))
        #expect(opener.open(before[0]).failure == .oldEpoch(received: 1_000, current: 5_000))
        #expect(opener.open(after[0]).failure == .replay(epoch: 5_000, counter: 0))
        #expect(opener.open(after[2]).success != nil)
        #expect(opener.statistics.droppedOldEpoch == 2)
        #expect(opener.statistics.peerEpochChanges == 2)
    }

    @Test("a forged higher epoch does not move the peer's epoch")
    func forgedEpoch() throws {
        let sent = try datagrams(2, epoch: 1_000)
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(sent[0]).success != nil)
        let forged = HandmadeDatagram(epoch: .max, body: heartbeatBody).bytes(key: Array(repeating: 0, count: 32))
        #expect(opener.open(forged).failure == .badMAC)
        #expect(opener.peerEpoch == 1_000)
        #expect(opener.open(sent[1]).success != nil)
    }

    @Test("the replay window on its own")
    func windowUnit() {
        var window = ReplayWindow()
        #expect(window.newest == nil)
        #expect(window.verdict(for: 0) == .fresh)
        #expect(record(100, in: &window))
        #expect(!record(100, in: &window))
        #expect(record(99, in: &window))
        #expect(window.verdict(for: 99) == .duplicate)
        // Advance by less than a word, by several words, and across a word boundary.
        for step: UInt64 in [1, 63, 64, 65, 200] {
            let newest = window.newest!
            #expect(record(newest + step, in: &window))
            #expect(window.verdict(for: newest) == .duplicate, "after a step of \(step)")
            #expect(window.verdict(for: newest + step - 1) == (step == 1 ? .duplicate : .fresh))
        }
        #expect(window.verdict(for: 99) == .duplicate, "99 is still inside the window")
        #expect(record(99 + 1_023, in: &window))
        #expect(window.verdict(for: 99) == .duplicate, "exactly at the far edge")
        #expect(window.verdict(for: 98) == .tooOld)
        #expect(window.verdict(for: 200) == .fresh, "never seen, inside the window")
        // A jump past the whole window forgets everything but the new counter.
        #expect(record(.max, in: &window))
        #expect(window.verdict(for: .max) == .duplicate)
        #expect(window.verdict(for: .max - 1) == .fresh)
        #expect(window.verdict(for: .max - 1_024) == .tooOld)
    }

    @Test("the window agrees with a set of counters on a random walk")
    func windowModel() {
        var generator = SeededGenerator(seed: 7)
        var window = ReplayWindow()
        var accepted = Set<UInt64>()
        var newest: UInt64?
        for _ in 0..<20_000 {
            let base = newest ?? 0
            let counter = base &+ UInt64.random(in: 0...80, using: &generator) &- 60
            guard counter <= base + 80 else { continue }  // wrapped below zero
            let expected: Bool
            if let newest, counter < newest, newest - counter >= UInt64(ReplayWindow.size) {
                expected = false
            } else {
                expected = !accepted.contains(counter)
            }
            let recorded = window.accept(counter)
            #expect(recorded == expected, "counter \(counter)")
            if expected {
                accepted.insert(counter)
                newest = max(newest ?? counter, counter)
            }
        }
        #expect(accepted.count > 1_000)
    }

    /// `window.accept(counter)`, callable inside `#expect` (which cannot call mutating methods).
    func record(_ counter: UInt64, in window: inout ReplayWindow) -> Bool {
        window.accept(counter)
    }
}
