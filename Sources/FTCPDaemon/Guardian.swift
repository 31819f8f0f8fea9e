import FTCPLinux
import Foundation
import Glibc
import Logging

/// The parent process of a bridge: starts the bridge as its child, passes it the signals an
/// operator sends, and when the child dies or hangs undoes what it left on the host (see
/// ``GuardianPolicy``), so that no single failure of the bridge process leaves clients worse
/// off than one plain server. It holds no packet and takes no decision about one; it only
/// waits, which is why it can outlive whatever killed the bridge.
public final class Guardian {
    let configuration: DaemonConfiguration
    let logger: Logger
    /// Silence of the child after which it counts as hung and is killed; 0 turns this off.
    private(set) var hangTimeoutMilliseconds: UInt64

    /// `--notify`: the operator's program, run on every change of state.
    private(set) var notify: NotifyHook?

    /// What a reload (SIGHUP) reads again and applies without a restart: the settings that only
    /// the guardian uses. Everything else (addresses, ports, queues, key, detection, bounds)
    /// is in use by the bridge's kernel state and rules, and takes effect at the next start.
    public struct ReloadableSettings: Equatable, Sendable {
        public var hangTimeoutMilliseconds: UInt64
        public var notifyProgram: String?

        public init(hangTimeoutMilliseconds: UInt64, notifyProgram: String?) {
            self.hangTimeoutMilliseconds = hangTimeoutMilliseconds
            self.notifyProgram = notifyProgram
        }
    }

    /// Reads the configuration again (file and command line, as at the start): the settings a
    /// reload applies, and the keys that changed but take effect only at a restart. Throws what
    /// is wrong with the file, and then nothing changes.
    public typealias Reload = @Sendable () throws -> (settings: ReloadableSettings, needRestart: [String])
    let reload: Reload?

    public init(
        configuration: DaemonConfiguration,
        logger: Logger,
        hangTimeoutMilliseconds: UInt64,
        notifyProgram: String? = nil,
        reload: Reload? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.hangTimeoutMilliseconds = hangTimeoutMilliseconds
        self.reload = reload
        notify = notifyProgram.map { Self.hook($0, configuration: configuration, logger: logger) }
    }

    private static func hook(_ program: String, configuration: DaemonConfiguration, logger: Logger) -> NotifyHook {
        NotifyHook(
            program: program,
            logger: logger,
            serviceAddress: "\(configuration.serviceAddress)",
            ownAddress: "\(configuration.ownAddress)"
        )
    }

    /// SIGHUP: reads the configuration again and applies what can change while running.
    func reloadConfiguration() {
        guard let reload else {
            logger.notice("SIGHUP: nothing to reload (started without a way to read the configuration again)")
            return
        }
        do {
            let (settings, needRestart) = try reload()
            var applied: [String] = []
            if settings.hangTimeoutMilliseconds != hangTimeoutMilliseconds {
                hangTimeoutMilliseconds = settings.hangTimeoutMilliseconds
                applied.append("hang-timeout")
            }
            if settings.notifyProgram != notify?.program {
                notify?.flush()
                notify = settings.notifyProgram.map { Self.hook($0, configuration: configuration, logger: logger) }
                applied.append("notify")
            }
            logger.notice(
                "configuration reloaded (SIGHUP)",
                metadata: [
                    "applied":
                        "\(applied.isEmpty ? "nothing changed that a reload applies" : applied.joined(separator: ","))",
                    "needs_restart": "\(needRestart.isEmpty ? "none" : needRestart.joined(separator: ","))",
                ]
            )
            if !needRestart.isEmpty {
                logger.warning(
                    """
                    changed settings take effect only when the bridge starts again (a planned switchover first \
                    keeps the protected connections): \(needRestart.joined(separator: ", "))
                    """
                )
            }
        } catch {
            logger.error("configuration reload refused (SIGHUP), the running configuration is unchanged: \(error)")
        }
    }

    /// Starts this same program with the same arguments as the bridge process, watches it
    /// until it ends, cleans up as the policy says, starts it again where the policy says so
    /// (after 1 s, doubling up to a minute while it keeps dying), and returns the exit status
    /// to use.
    public func run() throws -> Int32 {
        try TerminationSignals.install()
        try ReloadSignal.install()
        let systemd = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
        var backoffMilliseconds: UInt64 = 1_000
        while true {
            let started = MonotonicClock.now()
            let outcome = try superviseOnce(systemd: systemd)
            guard outcome.restart else { return outcome.status }
            if MonotonicClock.now().milliseconds(since: started) >= 60_000 { backoffMilliseconds = 1_000 }
            logger.notice("starting the bridge process again in \(backoffMilliseconds) ms")
            systemd.notify(
                "STATUS=\(configuration.role == .primary ? "primary" : "secondary"): bridge process died; restarting"
            )
            let until = MonotonicClock.now().adding(milliseconds: backoffMilliseconds)
            var waited = 0
            while MonotonicClock.now() < until && TerminationSignals.received == nil {
                usleep(50_000)
                waited += 1
                // The guardian itself is not stuck: systemd's watchdog must not fire meanwhile.
                if systemd.watchdogMicroseconds != nil && waited % 10 == 0 { systemd.notify("WATCHDOG=1") }
            }
            if TerminationSignals.received != nil { return 1 }
            backoffMilliseconds = min(backoffMilliseconds * 2, 60_000)
        }
    }

    /// Runs the bridge process once, to its end, and carries out the policy's clean-up.
    private func superviseOnce(systemd: SystemdNotifier) throws -> (status: Int32, restart: Bool) {
        var descriptors: [Int32] = [-1, -1]
        try systemCall("pipe") { pipe(&descriptors) }
        let reading = descriptors[0]
        _ = fcntl(reading, F_SETFD, FD_CLOEXEC)
        // The child's copy of the writing end must survive exec: a duplicate without CLOEXEC.
        let childEnd = try systemCall("fcntl(F_DUPFD)") { fcntl(descriptors[1], F_DUPFD, 3) }
        close(descriptors[1])
        defer { close(reading) }

        let child = try spawnSelf(passing: childEnd)
        close(childEnd)
        var role = configuration.role == .primary ? "primary" : "secondary"
        var lastWatchdogPing = MonotonicClock.now()
        let watchdogIntervalMilliseconds = systemd.watchdogMicroseconds.map { max(1, $0 / 2_000) }
        logger.info(
            "guardian watching the bridge process",
            metadata: [
                "pid": "\(child)", "hang_timeout_ms": "\(hangTimeoutMilliseconds)",
            ]
        )

        var lastState: String?
        var lastHeard = MonotonicClock.now()
        var forwarded: Int32?
        var hung: UInt64?
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let signal = TerminationSignals.received, forwarded != signal {
                kill(child, signal)
                forwarded = signal
                systemd.notify("STOPPING=1\nSTATUS=\(role): stopping (signal \(signal))")
                logger.notice("guardian passed signal \(signal) to the bridge process", metadata: ["pid": "\(child)"])
            }
            if ReloadSignal.take() { reloadConfiguration() }
            var poll = pollfd(fd: reading, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&poll, 1, 50)
            let now = MonotonicClock.now()
            if ready > 0 {
                let count = buffer.withUnsafeMutableBytes { read(reading, $0.baseAddress, $0.count) }
                if count == 0 { break }  // every copy of the writing end is closed: the child is gone
                if count > 0 {
                    lastHeard = now
                    pending += buffer[0..<count]
                    while let newline = pending.firstIndex(of: 10) {
                        let line = String(decoding: pending[..<newline], as: UTF8.self)
                        pending.removeSubrange(...newline)
                        if line.hasPrefix("role "), ["primary", "secondary"].contains(String(line.dropFirst(5))) {
                            role = String(line.dropFirst(5))
                            logger.info("the bridge now serves as \(role)")
                        } else if line.hasPrefix("state ") {
                            let first = lastState == nil
                            lastState = String(line.dropFirst(6))
                            notify?.stateChanged(role: role, state: lastState ?? "", reason: "the bridge's state")
                            logger.debug("bridge state", metadata: ["state": "\(lastState ?? "")"])
                            // The first state comes once the queues are bound, the rules installed and
                            // the channel open: that is when the service is ready.
                            systemd.notify((first ? "READY=1\n" : "") + "STATUS=\(role): \(lastState ?? "")")
                        }
                    }
                    // systemd's watchdog follows the bridge process's loop, through this process.
                    if let interval = watchdogIntervalMilliseconds,
                        now.milliseconds(since: lastWatchdogPing) >= interval
                    {
                        systemd.notify("WATCHDOG=1")
                        lastWatchdogPing = now
                    }
                }
            }
            // Hung: silent for the timeout after it began reporting (start-up is not timed) and
            // no stop under way (a stop with many connections may take a moment).
            let silence = now.milliseconds(since: lastHeard)
            if hangTimeoutMilliseconds > 0, lastState != nil, forwarded == nil, silence >= hangTimeoutMilliseconds {
                logger.critical(
                    "the bridge process has not turned its loop for \(silence) ms: killing it",
                    metadata: ["pid": "\(child)"]
                )
                kill(child, SIGKILL)
                hung = silence
                break
            }
        }

        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        let end = Self.describe(status: status, hung: hung, stopRequested: forwarded != nil)
        let decision = GuardianPolicy.decide(role: role, lastState: lastState, end: end)
        switch end {
        case .stoppedCleanly, .fenced:
            logger.info("bridge process ended: \(decision.explanation)")
            notify?.stateChanged(role: role, state: end == .fenced ? "fault" : "stop", reason: decision.explanation)
            notify?.flush()
            return (Self.exitCode(status), false)
        case let .died(how):
            logger.critical("the bridge process died (\(how)) in state \(lastState ?? "none"): \(decision.explanation)")
        case let .hung(milliseconds):
            logger.critical(
                "the bridge process hung (\(milliseconds) ms) in state \(lastState ?? "none"): \(decision.explanation)"
            )
        }
        carryOut(decision)
        notify?.stateChanged(role: role, state: "fault", reason: decision.explanation)
        if !(decision.restartBridge && forwarded == nil) { notify?.flush() }
        return (1, decision.restartBridge && forwarded == nil)
    }

    private func carryOut(_ decision: GuardianPolicy.Decision) {
        if decision.releaseServiceAddress {
            configuration.releaseServiceAddress(
                reason: "the bridge process is gone",
                logger: logger,
                unlessReleased: "the peer cannot take over while this host answers for it"
            )
        }
        if decision.removeRules {
            // Both roles' chains: a node whose role changed may have left either.
            let removed = Firewall().remove(role: .primary) + Firewall().remove(role: .secondary)
            logger.notice("bridge rules removed", metadata: ["commands": "\(removed)"])
        }
    }

    /// What the wait status says about how the child ended.
    static func describe(status: Int32, hung: UInt64?, stopRequested: Bool) -> GuardianPolicy.WorkerEnd {
        if let hung { return .hung(milliseconds: hung) }
        let signalled = status & 0x7f
        if signalled == 0 {
            let code = (status >> 8) & 0xff
            if code == GuardianPolicy.fencedExitCode { return .fenced }
            if code == 0 { return .stoppedCleanly }
            return .died("exit status \(code)")
        }
        let name = strsignal(signalled).map { String(cString: $0) } ?? "signal"
        return .died("killed by signal \(signalled), \(name)")
    }

    static func exitCode(_ status: Int32) -> Int32 {
        status & 0x7f == 0 ? (status >> 8) & 0xff : 1
    }

    /// Starts /proc/self/exe with this process's arguments, and the pipe's descriptor in the
    /// environment so the child knows it is the bridge process.
    private func spawnSelf(passing descriptor: Int32) throws -> pid_t {
        let executable = "/proc/self/exe"
        var environment = ProcessInfo.processInfo.environment
        environment[GuardianLink.environmentVariable] = String(descriptor)
        // systemd talks to this process only (NotifyAccess=main).
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { environment[name] = nil }
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, nil, nil, &argv, &envp)
        guard result == 0 else { throw SystemCallError(call: "posix_spawn(\(executable))", errno: result) }
        return child
    }
}
