import Glibc

/// Waits until any of a set of file descriptors is readable: a small wrapper over `poll(2)` for
/// a bridge's run loop (NFQUEUE socket, capture, replication socket).
///
/// The `pollfd` array is kept between calls, so a wait allocates nothing but its result (and
/// nothing at all with ``wait(timeoutMilliseconds:into:)``). A descriptor with an error or a hang-up
/// pending counts as ready: reading it reports the condition. `EINTR` is retried with the
/// same timeout, so a caller checking ``TerminationSignals`` should keep the timeout short.
///
/// Not thread-safe: use one instance from one thread.
public final class Poller {
    private var descriptors: [pollfd] = []

    public init() {}

    /// The registered descriptors, in registration order.
    public var registeredDescriptors: [Int32] { descriptors.map(\.fd) }

    /// Watches `descriptor` for readability; registering it twice does nothing.
    public func register(_ descriptor: Int32) {
        precondition(descriptor >= 0, "Poller.register: \(descriptor) is not a file descriptor")
        guard !descriptors.contains(where: { $0.fd == descriptor }) else { return }
        descriptors.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0))
    }

    /// Stops watching `descriptor` (do this before closing it); unknown descriptors are ignored.
    public func unregister(_ descriptor: Int32) {
        descriptors.removeAll { $0.fd == descriptor }
    }

    /// Waits until at least one registered descriptor is readable, or the timeout passes.
    ///
    /// - Parameter timeoutMilliseconds: how long to wait; 0 only looks, -1 waits without limit.
    /// - Returns: the ready descriptors in registration order; empty after a timeout.
    /// - Throws: ``LinuxShellError/Code/invalidDescriptor`` when a registered descriptor was
    ///   closed, ``LinuxShellError/Code/systemCall`` when `poll` itself fails.
    public func wait(timeoutMilliseconds: Int32) throws(LinuxShellError) -> [Int32] {
        var ready: [Int32] = []
        try wait(timeoutMilliseconds: timeoutMilliseconds, into: &ready)
        return ready
    }

    /// Like ``wait(timeoutMilliseconds:)``, but writes the ready descriptors into `ready`
    /// (emptied first, its capacity kept), so a loop that reuses one array allocates nothing.
    public func wait(timeoutMilliseconds: Int32, into ready: inout [Int32]) throws(LinuxShellError) {
        ready.removeAll(keepingCapacity: true)
        let count = nfds_t(descriptors.count)
        let readyCount: Int32
        do {
            readyCount = try descriptors.withUnsafeMutableBufferPointer { buffer throws(SystemCallError) in
                try systemCall("poll") { poll(buffer.baseAddress, count, timeoutMilliseconds) }
            }
        } catch {
            throw .classifying(error, operation: "wait for \(descriptors.count) descriptors")
        }
        guard readyCount > 0 else { return }
        for index in descriptors.indices {
            let events = descriptors[index].revents
            guard events != 0 else { continue }
            descriptors[index].revents = 0
            if events & Int16(POLLNVAL) != 0 {
                throw LinuxShellError(
                    .invalidDescriptor,
                    operation: "wait for descriptors",
                    detail: "descriptor \(descriptors[index].fd) is not open"
                )
            }
            ready.append(descriptors[index].fd)
        }
    }
}
