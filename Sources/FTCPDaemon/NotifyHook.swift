import Dispatch
import FTCPLinux
import Foundation
import Glibc
import Logging

/// `--notify PROGRAM`: runs an operator's program on every change of the node's state, with
/// keepalived's notify arguments, so that existing keepalived notify scripts work:
///
///     PROGRAM INSTANCE ftcp MASTER|BACKUP|FAULT|STOP PRIORITY
///
/// MASTER: this node serves the service address (primary, or a secondary that took it over);
/// BACKUP: a secondary; FAULT: its bridge process died or gave the address up; STOP: stopped.
/// The priority is 100 for MASTER, 50 otherwise. The environment adds what keepalived has no
/// word for: `FTCP_ROLE`, `FTCP_STATE` (ftcp's own state name), `FTCP_REASON`,
/// `FTCP_SERVICE_ADDRESS`, `FTCP_ADDRESS` (this node's own).
///
/// The guardian runs it, never the bridge process: calls are ordered, one at a time, on a
/// queue of their own, never on the packet path; a call that takes longer than
/// ``timeoutSeconds`` is killed and logged.
public final class NotifyHook: @unchecked Sendable {
    public let program: String
    public static let timeoutSeconds = 10
    private let queue = DispatchQueue(label: "ftcp.notify")
    private let logger: Logger
    private let environment: [String: String]
    private var lastState: String?

    public init(program: String, logger: Logger, serviceAddress: String, ownAddress: String) {
        self.program = program
        self.logger = logger
        var environment = ProcessInfo.processInfo.environment
        environment["FTCP_SERVICE_ADDRESS"] = serviceAddress
        environment["FTCP_ADDRESS"] = ownAddress
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", GuardianLink.environmentVariable] {
            environment[name] = nil
        }
        self.environment = environment
    }

    /// keepalived's word for an ftcp role and state.
    public static func keepalivedState(role: String, state: String) -> String {
        switch (role, state) {
        case (_, "fault"): return "FAULT"
        case (_, "stop"): return "STOP"
        case ("primary", _), ("secondary", "promoted"): return "MASTER"
        default: return "BACKUP"
        }
    }

    /// The bridge entered `state` in `role` (or `fault`, `stop`): queue one call, unless
    /// nothing changed. Returns at once.
    public func stateChanged(role: String, state: String, reason: String) {
        let key = "\(role)/\(state)"
        guard key != lastState else { return }
        lastState = key
        let keepalived = Self.keepalivedState(role: role, state: state)
        let arguments = ["INSTANCE", "ftcp", keepalived, keepalived == "MASTER" ? "100" : "50"]
        var environment = self.environment
        environment["FTCP_ROLE"] = role
        environment["FTCP_STATE"] = state
        environment["FTCP_REASON"] = reason
        let program = self.program
        let logger = self.logger
        let callEnvironment = environment
        queue.async {
            Self.run(program, arguments, environment: callEnvironment, logger: logger)
        }
    }

    /// Waits (up to the timeout) for the calls queued so far: at the guardian's exit, the last
    /// state (STOP, FAULT) must reach the program.
    public func flush() {
        queue.sync {}
    }

    private static func run(_ program: String, _ arguments: [String], environment: [String: String], logger: Logger) {
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, program, nil, nil, argv, envp)
        guard spawned == 0 else {
            logger.error(
                "the notify program could not be started",
                metadata: ["program": "\(program)", "error": "\(String(cString: strerror(spawned)))"]
            )
            return
        }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(TimeInterval(timeoutSeconds))
        while true {
            let done = waitpid(child, &status, WNOHANG)
            if done == child { break }
            if done < 0 && errno != EINTR { return }
            if Date() >= deadline {
                kill(child, SIGKILL)
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                logger.error(
                    "the notify program took over \(timeoutSeconds) s and was killed",
                    metadata: ["program": "\(program)", "state": "\(arguments[2])"]
                )
                return
            }
            usleep(5_000)
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if code != 0 {
            logger.warning(
                "the notify program failed",
                metadata: [
                    "program": "\(program)", "state": "\(arguments[2])", "exit_status": "\(code)",
                ]
            )
        } else {
            logger.info("notify program ran", metadata: ["program": "\(program)", "state": "\(arguments[2])"])
        }
    }
}
