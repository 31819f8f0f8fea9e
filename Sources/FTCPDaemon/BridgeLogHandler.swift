import Foundation
import Logging

/// The bridges' log format: one line per event on standard error, with a UTC
/// timestamp to the millisecond (a failover is over in tens of milliseconds, so
/// second-resolution stamps cannot show its order), the level, the label, the
/// message, and the metadata sorted by key.
///
///     2026-11-28T01:24:38.112Z notice ftcp-bridge.secondary: service address claimed address=10.80.0.1
///
/// Started by systemd with its output going to the journal (`JOURNAL_STREAM` set), each line
/// instead begins with its syslog priority and has no timestamp of its own (the journal stamps
/// it, to the microsecond), so that `journalctl -p warning` filters by level:
///
///     <5>ftcp-bridge.secondary: service address claimed address=10.80.0.1
public struct BridgeLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    /// The line format: with a timestamp of its own, or with a syslog priority for journald.
    public let journal: Bool

    public init(label: String, level: Logger.Level, journal: Bool = false) {
        self.label = label
        logLevel = level
        self.journal = journal
    }

    /// Whether this process's standard error goes to systemd's journal (`JOURNAL_STREAM`,
    /// `device:inode` of the stream systemd connected, matching standard error's).
    public static func standardErrorIsJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// The syslog priority of a level (RFC 5424: 7 debug … 2 critical).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata explicit: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        var all = metadata
        if let explicit { all.merge(explicit) { _, new in new } }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FileHandle.standardError.write(Data(formatted(level: level, message: "\(message)", fields: fields).utf8))
    }

    /// One line as written, without reading the clock when for the journal.
    func formatted(
        level: Logger.Level,
        message: String,
        fields: String,
        millisecondsSinceEpoch: @autoclosure () -> Int64 = Int64(Date().timeIntervalSince1970 * 1000)
    ) -> String {
        let rest = "\(label): \(message)\(fields.isEmpty ? "" : " " + fields)\n"
        if journal { return "<\(Self.priority(level))>" + rest }
        return "\(Self.timestamp(millisecondsSinceEpoch: millisecondsSinceEpoch())) \(level) " + rest
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time in milliseconds since 1970 (proleptic Gregorian, UTC).
    static func timestamp(millisecondsSinceEpoch: Int64) -> String {
        let milliseconds = millisecondsSinceEpoch % 1000
        let seconds = millisecondsSinceEpoch / 1000
        let days = seconds / 86_400
        let secondOfDay = seconds % 86_400
        // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
        let shifted = days + 719_468
        let era = shifted / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(milliseconds, 3))Z"
    }
}
