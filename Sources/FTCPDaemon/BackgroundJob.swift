import Foundation
import Synchronization

/// One piece of blocking work (iptables runs) done on a thread of its own, so that the loop
/// that moves packets does not stop for it; the loop asks on each turn whether it is done.
final class BackgroundJob: Sendable {
    private let finished = Atomic<Bool>(false)
    private let failure = Mutex<String?>(nil)

    init(_ work: @escaping @Sendable () throws -> Void) {
        Thread.detachNewThread { [self] in
            do {
                try work()
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            finished.store(true, ordering: .releasing)
        }
    }

    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// What went wrong, once finished (nil: it succeeded).
    var error: String? { failure.withLock { $0 } }

    /// Waits for the work to end (at stop: what it changes on the host must be known).
    func wait() {
        while !isFinished { usleep(1_000) }
    }
}

/// Hands an object that is not `Sendable` to a ``BackgroundJob`` that is its only user from
/// then on (a stopped capture it closes).
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
