import Testing
import FTCPBridge
@testable import FTCPDaemon

@Suite("Log lines")
struct LoggingTests {
    @Test("timestamps are UTC to the millisecond, across month, leap-day and year boundaries", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400_123), "2000-02-29T00:00:00.123Z"),
        (Int64(1_709_251_199_999), "2024-02-29T23:59:59.999Z"),
        (Int64(1_795_829_126_407), "2026-11-28T01:25:26.407Z"),
        (Int64(4_102_444_800_000), "2100-01-01T00:00:00.000Z"),
    ])
    func timestamps(milliseconds: Int64, expected: String) {
        #expect(BridgeLogHandler.timestamp(millisecondsSinceEpoch: milliseconds) == expected)
    }

    @Test("a warning repeated for every packet is written once a second, with how many were left out")
    func throttle() {
        var throttle = LogThrottle(intervalMilliseconds: 1000)
        #expect(throttle.admit("send", now: .milliseconds(0)) == 0)
        for at in stride(from: UInt64(1), to: 1000, by: 100) {
            #expect(throttle.admit("send", now: .milliseconds(at)) == nil)
        }
        #expect(throttle.admit("other", now: .milliseconds(500)) == 0, "subjects are throttled apart")
        #expect(throttle.admit("send", now: .milliseconds(1000)) == 10)
        #expect(throttle.admit("send", now: .milliseconds(2500)) == 0)
    }
}
