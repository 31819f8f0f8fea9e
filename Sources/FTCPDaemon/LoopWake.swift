import FTCPBridge

/// How long a bridge's loop sleeps in `poll` when nothing arrives: until the earliest deadline
/// of its parts (the node's timers, the channel's resend requests, the guardian's keep-alive,
/// a job on another thread it waits for), never a guess.
enum LoopWake {
    /// The longest sleep, reached only when every part's deadline is further (a long
    /// `--heartbeat-interval`): the loop still turns once a second.
    static let longestMilliseconds: UInt64 = 1_000
    /// How often a loop that waits for a job on another thread (the swap of its rules) looks.
    static let jobPollMilliseconds: UInt64 = 2

    /// The poll timeout: the time to the earliest deadline, rounded up (a loop that woke a
    /// fraction early would find nothing due and poll again at once), at least 1 ms, at most
    /// ``longestMilliseconds``.
    static func timeoutMilliseconds(now: MonotonicTime, deadlines: [MonotonicTime?]) -> Int32 {
        guard let earliest = deadlines.compactMap({ $0 }).min() else { return Int32(longestMilliseconds) }
        let nanoseconds = earliest.nanoseconds > now.nanoseconds ? earliest.nanoseconds - now.nanoseconds : 0
        let milliseconds = (nanoseconds + 999_999) / 1_000_000
        return Int32(min(max(milliseconds, 1), longestMilliseconds))
    }
}
