import Glibc
import Synchronization

/// SIGHUPs received and not yet taken, written from the signal handler (lock-free, so safe there).
private let pendingReloads = Atomic<Int>(0)

/// Turns SIGHUP into a request a loop takes when it next turns (``take()``): the conventional
/// "reload your configuration" of a daemon.
public enum ReloadSignal {
    /// Installs the handler for SIGHUP.
    public static func install() throws(SystemCallError) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            pendingReloads.add(1, ordering: .relaxed)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        try systemCall("sigaction(SIGHUP)") { sigaction(SIGHUP, &action, nil) }
    }

    /// Whether a SIGHUP came since the last call (several count as one).
    public static func take() -> Bool {
        pendingReloads.exchange(0, ordering: .relaxed) > 0
    }
}
