import Glibc

/// The bridge process's end of the pipe to its guardian (the parent process that cleans up
/// if the bridge dies or hangs): it tells the guardian each state it enters and, from every
/// turn of its loop, that it is still alive.
///
/// The protocol is one line per message: `role primary|secondary` (when the node's role
/// changes: after a takeover it serves as primary), `state NAME` or `alive`. Writes never block: if the
/// guardian does not read, a message is dropped (the guardian then counts the bridge as
/// hung only if nothing at all arrives for its hang timeout).
public final class GuardianLink {
    /// The environment variable that carries the pipe's descriptor to the bridge process.
    public static let environmentVariable = "FTCP_GUARDIAN_FD"
    /// Least time between two `alive` messages.
    public static let aliveIntervalMilliseconds: UInt64 = 100

    public let fileDescriptor: Int32
    private var lastAliveMilliseconds: UInt64?
    /// Whether the guardian went away (its end of the pipe is closed).
    public private(set) var guardianGone = false

    public init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        _ = fcntl(fileDescriptor, F_SETFD, FD_CLOEXEC)
        let flags = fcntl(fileDescriptor, F_GETFL)
        if flags >= 0 { _ = fcntl(fileDescriptor, F_SETFL, flags | O_NONBLOCK) }
    }

    /// The link this process was started with, if a guardian started it.
    public static func fromEnvironment() -> GuardianLink? {
        guard let text = getenv(environmentVariable), let descriptor = Int32(String(cString: text)), descriptor > 2
        else {
            return nil
        }
        unsetenv(environmentVariable)
        return GuardianLink(fileDescriptor: descriptor)
    }

    /// Tells the guardian the state the bridge has just entered.
    public func report(state: String) {
        send("state \(state)\n")
    }

    /// Tells the guardian the role the bridge now plays (its clean-up depends on it).
    public func report(role: String) {
        send("role \(role)\n")
    }

    /// When ``keepAlive(nowMilliseconds:)`` next sends (milliseconds of the same clock); nil: at once.
    public var nextAliveMilliseconds: UInt64? { lastAliveMilliseconds.map { $0 + Self.aliveIntervalMilliseconds } }

    /// Tells the guardian the loop is turning; at most once per ``aliveIntervalMilliseconds``.
    public func keepAlive(nowMilliseconds: UInt64) {
        if let last = lastAliveMilliseconds, nowMilliseconds &- last < Self.aliveIntervalMilliseconds { return }
        lastAliveMilliseconds = nowMilliseconds
        send("alive\n")
    }

    private func send(_ line: String) {
        guard !guardianGone else { return }
        var bytes = Array(line.utf8)
        let written = bytes.withUnsafeMutableBytes { write(fileDescriptor, $0.baseAddress, $0.count) }
        if written < 0 && errno == EPIPE { guardianGone = true }
    }
}
