import FTCPBridge
import Logging

/// Keeps a warning that can repeat for every packet (a send failing while a link is down)
/// to one line per interval, and says how many were left out, so a log stays readable and
/// small while the counter in `status` keeps the exact number.
struct LogThrottle {
    let intervalMilliseconds: UInt64
    private var lines: [String: (at: MonotonicTime, suppressed: UInt64)] = [:]

    init(intervalMilliseconds: UInt64 = 1000) {
        self.intervalMilliseconds = intervalMilliseconds
    }

    /// Whether a line about `subject` may be written now; if so, how many were left out
    /// since the last one written.
    mutating func admit(_ subject: String, now: MonotonicTime) -> UInt64? {
        if let previous = lines[subject], now.milliseconds(since: previous.at) < intervalMilliseconds {
            lines[subject] = (previous.at, previous.suppressed + 1)
            return nil
        }
        let suppressed = lines[subject]?.suppressed ?? 0
        lines[subject] = (now, 0)
        return suppressed
    }

    /// Writes a warning about `subject` through `logger` if one may be written now, with
    /// `similar_lines_left_out` added to its metadata.
    mutating func warning(
        _ subject: String,
        _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata,
        logger: Logger,
        now: MonotonicTime
    ) {
        guard let suppressed = admit(subject, now: now) else { return }
        var all = metadata()
        all["similar_lines_left_out"] = "\(suppressed)"
        logger.warning(message(), metadata: all)
    }
}
