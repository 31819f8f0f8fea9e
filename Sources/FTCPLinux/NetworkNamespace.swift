import CNetfilterQueue
import Glibc

/// Runs code with the calling thread inside a named network namespace (`ip netns add NAME`).
///
/// Network namespaces are per thread, and a socket stays in the namespace it was created in:
/// open sockets inside ``run(in:_:)`` and use them after it returns. The thread is always moved
/// back; if that fails the process stops, since it would otherwise go on in the wrong namespace.
public enum NetworkNamespace {
    /// Where `ip netns` keeps its namespace handles.
    public static let directory = "/run/netns"

    public static func run<Result>(in name: String, _ body: () throws -> Result) throws -> Result {
        let path = "\(directory)/\(name)"
        let target = try systemCall("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(target) }
        let original = try systemCall("open(/proc/thread-self/ns/net)") {
            open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        }
        defer { close(original) }
        try systemCall("setns(\(path), CLONE_NEWNET)") { ftcp_setns_net(target) }
        defer {
            do {
                try systemCall("setns(original, CLONE_NEWNET)") { ftcp_setns_net(original) }
            } catch {
                fatalError("cannot return to the original network namespace: \(error)")
            }
        }
        return try body()
    }
}
