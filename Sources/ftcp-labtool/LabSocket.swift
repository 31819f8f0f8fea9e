import FTCPLinux
import Glibc

/// An IPv4 address and port written as `a.b.c.d:port`.
struct Endpoint: CustomStringConvertible {
    var address: in_addr
    var port: UInt16
    let text: String

    init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        var address = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &address) == 1 else { return nil }
        self.address = address
        self.port = port
        self.text = text
    }

    var description: String { text }

    var socketAddress: sockaddr_in {
        var value = sockaddr_in()
        value.sin_family = sa_family_t(AF_INET)
        value.sin_port = port.bigEndian
        value.sin_addr = address
        return value
    }
}

/// A blocking IPv4 socket whose waits are all bounded by a deadline (the lab never hangs).
final class LabSocket {
    let fd: Int32

    init(type: Int32 = SocketType.stream) throws {
        fd = try systemCall("socket") { socket(AF_INET, type | SocketType.closeOnExec, 0) }
    }

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        _ = close(fd)
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        try systemCall("setsockopt(\(name))") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    func bind(_ endpoint: Endpoint) throws {
        var address = endpoint.socketAddress
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                _ = try systemCall("bind(\(endpoint))") {
                    Glibc.bind(fd, generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Connects once; returns the errno of a refused or unreachable attempt instead of throwing.
    func connect(_ endpoint: Endpoint) throws -> Int32? {
        var address = endpoint.socketAddress
        do {
            try withUnsafePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    _ = try systemCall("connect(\(endpoint))") {
                        Glibc.connect(fd, generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            return nil
        } catch let error as SystemCallError
            where [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT].contains(error.errno)
        {
            return error.errno
        }
    }

    /// The port the socket is bound to (after connect(), the one the kernel chose).
    var localPort: UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? UInt16(bigEndian: address.sin_port) : 0
    }

    func listen() throws {
        try systemCall("listen") { Glibc.listen(fd, 4) }
    }

    /// Waits for `events` until `deadline`; returns false when the deadline passed first.
    func wait(_ events: Int32, until deadline: ContinuousClock.Instant) throws -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(events), revents: 0)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return false }
            let milliseconds = Int32(
                clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
                    + 1
            )
            let ready = try systemCall("poll") { poll(&descriptor, 1, milliseconds) }
            if ready > 0 { return true }
        }
    }

    func accept(until deadline: ContinuousClock.Instant) throws -> LabSocket? {
        guard try wait(POLLIN, until: deadline) else { return nil }
        let connection = try systemCall("accept") { Glibc.accept(fd, nil, nil) }
        return LabSocket(fd: connection)
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try systemCall("recv") { recv(fd, buffer.baseAddress, buffer.count, 0) }
    }

    func send(_ buffer: UnsafeRawBufferPointer) throws -> Int {
        try systemCall("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends one datagram to `endpoint` (an unconnected UDP socket).
    @discardableResult
    func send(_ buffer: UnsafeRawBufferPointer, to endpoint: Endpoint) throws -> Int {
        var address = endpoint.socketAddress
        return try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                try systemCall("sendto(\(endpoint))") {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    func shutdownWrite() throws {
        try systemCall("shutdown") { shutdown(fd, Int32(SHUT_WR)) }
    }

    /// SO_LINGER with a zero timeout: closing the socket then sends a reset, not a FIN, and
    /// leaves no TIME-WAIT behind.
    func resetOnClose() throws {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        try systemCall("setsockopt(SO_LINGER)") {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
    }
}

/// Sleeps for `duration` (bounded by the caller).
func pause(for duration: Duration) {
    guard duration > .zero else { return }
    var request = timespec(
        tv_sec: Int(duration.components.seconds),
        tv_nsec: Int(duration.components.attoseconds / 1_000_000_000)
    )
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR {
        request = remaining
    }
}

/// A deterministic byte stream (xorshift64*), so a sender's bytes can be regenerated anywhere.
struct PatternStream {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var index = 0
        while index < buffer.count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            var word = (state &* 0x2545_F491_4F6C_DD1D).littleEndian
            let take = min(8, buffer.count - index)
            withUnsafeBytes(of: &word) { bytes in
                for offset in 0..<take { buffer[index + offset] = bytes[offset] }
            }
            index += take
        }
    }
}
