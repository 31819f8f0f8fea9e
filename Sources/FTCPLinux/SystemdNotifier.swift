import Glibc

/// Tells systemd how a service started with `Type=notify` is doing (`sd_notify(3)`'s
/// protocol): one datagram of `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET`
/// (a path, or an abstract name written with a leading `@`).
///
/// Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing. Sends never
/// block and failures are ignored: systemd's view of the service is no reason to stop serving.
public final class SystemdNotifier {
    private var fd: Int32 = -1
    private var address = sockaddr_un()
    private var addressLength: socklen_t = 0
    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
    public let watchdogMicroseconds: UInt64?

    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from `environment`.
    public init(environment: [String: String]) {
        if let text = environment["WATCHDOG_USEC"], let value = UInt64(text), value > 0,
            environment["WATCHDOG_PID"].map({ $0 == String(getpid()) }) ?? true
        {
            watchdogMicroseconds = value
        } else {
            watchdogMicroseconds = nil
        }
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // an abstract socket
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        fd = socket(AF_UNIX, SocketType.datagram | SocketType.closeOnExec | SocketType.nonblocking, 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether systemd is listening (`NOTIFY_SOCKET` was set and a socket could be made).
    public var isActive: Bool { fd >= 0 }

    /// Sends `message` (lines such as `READY=1\nSTATUS=replicating`); returns whether it left.
    @discardableResult
    public func notify(_ message: String) -> Bool {
        guard fd >= 0 else { return false }
        let bytes = Array(message.utf8)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
        return sent == bytes.count
    }
}
