import Testing

@testable import FTCPReplication

@Suite("Resend requests: which lost datagrams to ask for, and when")
struct ResendTrackerTests {
    var tracker = ResendTracker(window: 2048)

    @Test("counters 1, 2, then 5: 3 and 4 are asked for at once; 3 arriving late fills its gap")
    mutating func gap() {
        #expect(tracker.received(epoch: 9, counter: 1, nowMilliseconds: 0).isEmpty)
        #expect(tracker.received(epoch: 9, counter: 2, nowMilliseconds: 1).isEmpty)
        #expect(tracker.received(epoch: 9, counter: 5, nowMilliseconds: 2) == [3..<5])
        #expect(tracker.missingCount == 2)
        #expect(tracker.received(epoch: 9, counter: 3, nowMilliseconds: 3).isEmpty)
        #expect(tracker.missingCount == 1)
    }

    @Test(
        "a counter still missing is asked for again after 15 ms, then 30, 60, 120, 240, 480, and given up after 7 attempts"
    )
    mutating func backoff() {
        _ = tracker.received(epoch: 9, counter: 1, nowMilliseconds: 0)
        #expect(tracker.received(epoch: 9, counter: 3, nowMilliseconds: 0) == [2..<3])
        var asked: [UInt64] = []
        for now in UInt64(1)...2_000 where !tracker.due(nowMilliseconds: now).isEmpty { asked.append(now) }
        #expect(asked == [15, 45, 105, 225, 465, 945], "six more asks, each wait doubling from 15 ms")
        #expect(tracker.missingCount == 0)
        #expect(tracker.abandoned == 1)
    }

    @Test("the next retry deadline is each ask's time plus its wait: the loop sleeps exactly until then")
    mutating func nextRetryDeadline() {
        #expect(tracker.nextRetryMilliseconds == nil)
        _ = tracker.received(epoch: 9, counter: 1, nowMilliseconds: 0)
        _ = tracker.received(epoch: 9, counter: 3, nowMilliseconds: 10)
        #expect(tracker.nextRetryMilliseconds == 25)
        #expect(tracker.due(nowMilliseconds: 24).isEmpty)
        #expect(tracker.due(nowMilliseconds: 25) == [2..<3])
        #expect(tracker.nextRetryMilliseconds == 55)
        _ = tracker.received(epoch: 9, counter: 2, nowMilliseconds: 30)
        #expect(tracker.nextRetryMilliseconds == nil)
    }

    @Test("retries of neighbouring counters go out as one range")
    mutating func rangesCoalesce() {
        _ = tracker.received(epoch: 9, counter: 10, nowMilliseconds: 0)
        #expect(tracker.received(epoch: 9, counter: 14, nowMilliseconds: 0) == [11..<14])
        _ = tracker.received(epoch: 9, counter: 12, nowMilliseconds: 5)
        #expect(tracker.due(nowMilliseconds: 15) == [11..<12, 13..<14])
    }

    @Test("after 100 ms of silence the gap is not asked for: what the peer sent meanwhile is stale")
    mutating func resynchronize() {
        _ = tracker.received(epoch: 9, counter: 1, nowMilliseconds: 0)
        #expect(tracker.received(epoch: 9, counter: 50, nowMilliseconds: 100).isEmpty)
        #expect(tracker.resynchronizations == 1)
        #expect(
            tracker.received(epoch: 9, counter: 52, nowMilliseconds: 101) == [51..<52],
            "and gaps after it count again"
        )
    }

    @Test("a new epoch (the peer's process restarted) starts over: nothing of the old one is asked for")
    mutating func newEpoch() {
        _ = tracker.received(epoch: 9, counter: 1, nowMilliseconds: 0)
        _ = tracker.received(epoch: 9, counter: 4, nowMilliseconds: 1)
        #expect(tracker.missingCount == 2)
        #expect(tracker.received(epoch: 10, counter: 1, nowMilliseconds: 2).isEmpty)
        #expect(tracker.missingCount == 0)
        #expect(tracker.due(nowMilliseconds: 100).isEmpty)
    }

    @Test("a jump far beyond the sender's history asks only for what it can still resend")
    mutating func boundedByWindow() {
        var small = ResendTracker(window: 8)
        _ = small.received(epoch: 1, counter: 1, nowMilliseconds: 0)
        #expect(small.received(epoch: 1, counter: 100, nowMilliseconds: 1) == [92..<100])
        #expect(small.missingCount == 8)
    }

    /// Found by Fuzz/ReplicationOpenerFuzzer.swift: an authentic datagram with the counter 2^64 - 1
    /// (which no sealer sends, but a holder of the key can) trapped on `counter + 1`.
    @Test("the largest counter is taken without a trap, and nothing is expected after it")
    mutating func largestCounter() throws {
        var opener = Fixtures.opener(.secondary)
        let datagram = HandmadeDatagram(type: 2, role: 1, epoch: 986, counter: .max, body: [0, 0]).bytes()
        let received = try #require(opener.open(datagram).success)
        #expect(received.counter == .max)
        #expect(tracker.received(epoch: received.epoch, counter: received.counter, nowMilliseconds: 0).isEmpty)
        #expect(tracker.received(epoch: 986, counter: 3, nowMilliseconds: 1).isEmpty, "a late one")
        #expect(tracker.missingCount == 0)

        _ = tracker.received(epoch: 987, counter: 1, nowMilliseconds: 2)
        #expect(tracker.received(epoch: 987, counter: .max, nowMilliseconds: 3) == [(UInt64.max - 2048)..<UInt64.max])
        #expect(tracker.received(epoch: 987, counter: 5, nowMilliseconds: 4).isEmpty)
    }
}
