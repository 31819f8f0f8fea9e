import Glibc
import Synchronization

/// The last termination signal received, written from the signal handler (lock-free, so safe there).
private let lastTerminationSignal = Atomic<Int32>(0)

/// Turns SIGINT and SIGTERM into a flag a run loop polls, so a program can finish its work
/// (give verdicts for what it holds, write its statistics) instead of dying mid-way.
///
/// The handler only stores the signal number; loops must wake up regularly (bounded `poll`
/// timeouts) to look at ``received``.
public enum TerminationSignals {
    /// Installs the handler for SIGINT and SIGTERM (and ignores SIGPIPE).
    public static func install() throws(SystemCallError) {
        for signalNumber in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                lastTerminationSignal.store(number, ordering: .relaxed)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            try systemCall("sigaction(\(signalNumber))") { sigaction(signalNumber, &action, nil) }
        }
        signal(SIGPIPE, SIG_IGN)
    }

    /// The signal number received since ``install()``, or nil if none came.
    public static var received: Int32? {
        let value = lastTerminationSignal.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }
}
