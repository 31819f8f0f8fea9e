import Glibc

/// A system call that returned -1, with the name of the call and the `errno` it left.
///
/// Every system call in FTCPLinux goes through ``systemCall(_:_:)``, so a failure always names the
/// call that failed (`"setsockopt(SO_RCVBUFFORCE)"`, `"recv"`) instead of a bare number.
public struct SystemCallError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The call that failed, as a person would name it (for example `"bind(AF_NETLINK)"`).
    public let call: String
    /// The `errno` value the call left behind.
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// The C library's text for ``errno`` (for example "Operation not permitted").
    public var errnoDescription: String {
        guard let text = strerror(errno) else { return "errno \(errno)" }
        return String(cString: text)
    }

    public var description: String {
        "\(call) failed: \(errnoDescription) (errno \(errno))"
    }
}

/// Runs one system call, retrying it while it fails with `EINTR`, and turns `-1`/`errno` into a
/// ``SystemCallError`` that names the call.
///
/// - Parameters:
///   - name: how the call is named in the error, e.g. `"poll"`.
///   - body: the call itself; it must return -1 and set `errno` on failure (the POSIX convention).
/// - Returns: the call's non-negative result.
@discardableResult
public func systemCall<Result: BinaryInteger>(
    _ name: @autoclosure () -> String,
    _ body: () -> Result
) throws(SystemCallError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemCallError(call: name(), errno: code)
    }
}

/// Sets an integer socket option through ``systemCall(_:_:)``; `name` labels the error,
/// e.g. `"setsockopt(SO_MARK)"`.
func setIntegerSocketOption(
    _ descriptor: Int32,
    level: Int32,
    option: Int32,
    value: Int32,
    name: String
) throws(SystemCallError) {
    var value = value
    try systemCall(name) {
        setsockopt(descriptor, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// Sets a socket buffer size: with the `*FORCE` option (which ignores `net.core.[rw]mem_max`)
/// when running as root, falling back to the plain option, which the kernel caps at that limit.
///
/// - Parameters:
///   - receive: `true` for the receive buffer (`SO_RCVBUF`), `false` for the send buffer (`SO_SNDBUF`).
func setSocketBufferSize(_ descriptor: Int32, receive: Bool, bytes: Int) throws(SystemCallError) {
    let value = Int32(clamping: bytes)
    if geteuid() == 0 {
        let forced = receive ? SO_RCVBUFFORCE : SO_SNDBUFFORCE
        let forcedName = receive ? "setsockopt(SO_RCVBUFFORCE)" : "setsockopt(SO_SNDBUFFORCE)"
        do {
            try setIntegerSocketOption(descriptor, level: SOL_SOCKET, option: forced, value: value, name: forcedName)
            return
        } catch {
            // No CAP_NET_ADMIN in this user namespace: fall through to the capped option.
        }
    }
    let plain = receive ? SO_RCVBUF : SO_SNDBUF
    let plainName = receive ? "setsockopt(SO_RCVBUF)" : "setsockopt(SO_SNDBUF)"
    try setIntegerSocketOption(descriptor, level: SOL_SOCKET, option: plain, value: value, name: plainName)
}
