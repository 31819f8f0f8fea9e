import FTCPLinux
import Foundation
import Glibc
import Testing

/// `sd_notify`'s protocol against a real Unix datagram socket standing in for systemd's.
@Suite("systemd notifications")
struct SystemdNotifierTests {
    /// A datagram socket bound at a fresh path, as systemd's NOTIFY_SOCKET is.
    final class Listener {
        let path: String
        let fd: Int32

        init() throws {
            path = NSTemporaryDirectory() + "ftcp-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            fd = socket(AF_UNIX, SocketType.datagram | SocketType.closeOnExec, 0)
            try #require(fd >= 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try #require(bound == 0, "bind: errno \(errno)")
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
        }
    }

    @Test("READY, STATUS and WATCHDOG reach the socket NOTIFY_SOCKET names; the watchdog interval is read")
    func notifies() throws {
        let listener = try Listener()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "3000000"])
        #expect(notifier.isActive)
        #expect(notifier.watchdogMicroseconds == 3_000_000)
        #expect(notifier.notify("READY=1\nSTATUS=primary: replicating"))
        #expect(listener.receive() == "READY=1\nSTATUS=primary: replicating")
        #expect(notifier.notify("WATCHDOG=1"))
        #expect(listener.receive() == "WATCHDOG=1")
    }

    @Test("without NOTIFY_SOCKET nothing is sent; a watchdog meant for another process is not this one's")
    func inactive() {
        let notifier = SystemdNotifier(environment: ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"])
        #expect(!notifier.isActive)
        #expect(notifier.watchdogMicroseconds == nil)
        #expect(!notifier.notify("READY=1"))
    }
}
