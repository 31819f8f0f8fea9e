import Foundation

/// A child process whose output goes to files (so a full pipe never blocks it) and whose every
/// wait is bounded; the lab tests use it for lab.sh, the lab tool and tcpdump.
final class LabProcess {
    let name: String
    let process = Process()
    let outputPath: String
    let errorPath: String

    /// Finds a program in the usual system directories or PATH.
    static func locate(_ program: String) -> String? {
        if program.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for directory in directories {
            let candidate = directory + "/" + program
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    init(
        _ name: String,
        _ executable: String,
        _ arguments: [String],
        directory: URL,
        environment: [String: String] = [:]
    ) throws {
        self.name = name
        guard let resolved = Self.locate(executable) else {
            throw LabError("\(executable) is not installed (needed for \(name))")
        }
        let safeName = name.map { $0.isLetter || $0.isNumber ? $0 : "-" }
        outputPath = directory.appendingPathComponent("\(String(safeName)).out").path
        errorPath = directory.appendingPathComponent("\(String(safeName)).err").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: resolved)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        process.environment = merged
    }

    func start() throws {
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Waits until the process exits or `timeout` passes; returns whether it exited.
    @discardableResult
    func wait(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Waits until `text` appears in standard error or `timeout` passes.
    func waitForError(containing text: String, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if errors.contains(text) { return true }
            if !process.isRunning { return errors.contains(text) }
            usleep(10_000)
        }
        return false
    }

    /// SIGINT, then SIGKILL if it has not exited after `grace`.
    func stop(grace: Duration = .seconds(3)) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGINT)
        if !wait(timeout: grace) {
            kill(process.processIdentifier, SIGKILL)
            wait(timeout: .seconds(2))
        }
    }

    /// Runs to completion (killed after `timeout`); returns the exit status, or nil on timeout.
    func run(timeout: Duration) throws -> Int32? {
        try start()
        guard wait(timeout: timeout) else {
            stop(grace: .milliseconds(500))
            return nil
        }
        return process.terminationStatus
    }

    /// The `key=value` pairs of the last line of standard output.
    var lastLineFields: [String: String] {
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        var fields: [String: String] = [:]
        for pair in line.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }
}

/// A lab failure with a message saying what went wrong and what to look at.
struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
