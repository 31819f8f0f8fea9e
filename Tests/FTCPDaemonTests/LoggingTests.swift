import FTCPBridge
import Foundation
import Logging
import Testing

@testable import FTCPDaemon

@Suite("Log lines")
struct LoggingTests {
    @Test(
        "timestamps are UTC to the millisecond, across month, leap-day and year boundaries",
        arguments: [
            (Int64(0), "1970-01-01T00:00:00.000Z"),
            (Int64(951_782_400_123), "2000-02-29T00:00:00.123Z"),
            (Int64(1_709_251_199_999), "2024-02-29T23:59:59.999Z"),
            (Int64(1_795_829_126_407), "2026-11-28T01:25:26.407Z"),
            (Int64(4_102_444_800_000), "2100-01-01T00:00:00.000Z"),
        ]
    )
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

    @Test("a throttled warning carries its metadata and how many similar lines were left out")
    func throttledWarning() {
        let lines = RecordedLines()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(lines: lines) }
        var throttle = LogThrottle(intervalMilliseconds: 1000)
        for at in stride(from: UInt64(0), through: 1000, by: 250) {
            throttle.warning(
                "inject",
                "injecting failed",
                metadata: ["bytes": "\(at)"],
                logger: logger,
                now: .milliseconds(at)
            )
        }
        let written = lines.all
        #expect(written.map(\.message) == ["injecting failed", "injecting failed"])
        #expect(written.map { $0.metadata["bytes"]?.description } == ["0", "1000"])
        #expect(written.map { $0.metadata["similar_lines_left_out"]?.description } == ["0", "3"])
        #expect(written.allSatisfy { $0.level == .warning })
    }
}

/// Lines a ``RecordingLogHandler`` was given.
final class RecordedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []

    func append(_ line: (level: Logger.Level, message: String, metadata: Logger.Metadata)) {
        lock.withLock { lines.append(line) }
    }

    var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lock.withLock { lines } }
}

/// A log handler that keeps every line it is given, for tests of what the bridges log.
struct RecordingLogHandler: LogHandler {
    let lines: RecordedLines
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata explicit: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        lines.append((level, message.description, metadata.merging(explicit ?? [:]) { $1 }))
    }
}

extension LoggingTests {
    @Test("for the journal a line starts with its syslog priority and carries no timestamp of its own")
    func journalLines() {
        let journal = BridgeLogHandler(label: "ftcp-bridge.primary", level: .info, journal: true)
        #expect(
            journal.formatted(level: .warning, message: "secondary failed", fields: "silence_ms=80")
                == "<4>ftcp-bridge.primary: secondary failed silence_ms=80\n"
        )
        #expect(
            journal.formatted(level: .critical, message: "fenced", fields: "") == "<2>ftcp-bridge.primary: fenced\n"
        )
        let plain = BridgeLogHandler(label: "ftcp-bridge.primary", level: .info)
        #expect(
            plain.formatted(level: .notice, message: "claimed", fields: "", millisecondsSinceEpoch: 0)
                == "1970-01-01T00:00:00.000Z notice ftcp-bridge.primary: claimed\n"
        )
    }

    @Test("JOURNAL_STREAM counts only when it names this process's standard error")
    func journalStreamDetection() {
        #expect(!BridgeLogHandler.standardErrorIsJournal(environment: [:]))
        #expect(!BridgeLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "garbage"]))
        #expect(!BridgeLogHandler.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "1:1"]))
    }
}
