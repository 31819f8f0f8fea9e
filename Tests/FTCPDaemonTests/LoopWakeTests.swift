import FTCPBridge
import Testing

@testable import FTCPDaemon

@Suite("How long a loop sleeps")
struct LoopWakeTests {
    let now = MonotonicTime.milliseconds(1_000)

    @Test("until the earliest deadline, rounded up to whole milliseconds")
    func earliest() {
        let deadlines: [MonotonicTime?] = [
            now.adding(milliseconds: 10), nil, MonotonicTime(nanoseconds: now.nanoseconds + 2_300_000),
        ]
        #expect(LoopWake.timeoutMilliseconds(now: now, deadlines: deadlines) == 3)
    }

    @Test("a deadline already due still sleeps 1 ms (never a spin); none at all, a second")
    func bounds() {
        #expect(LoopWake.timeoutMilliseconds(now: now, deadlines: [.milliseconds(5)]) == 1)
        #expect(LoopWake.timeoutMilliseconds(now: now, deadlines: [nil]) == 1_000)
        #expect(LoopWake.timeoutMilliseconds(now: now, deadlines: [now.adding(milliseconds: 60_000)]) == 1_000)
    }
}
