import FTCPWire
import Glibc

/// A nonblocking UDP socket bound to one IPv4 address and port: the channel the two bridges
/// replicate over.
///
/// The socket is opened with `SO_REUSEADDR` (unless told not to) and, when asked, large buffers (`SO_RCVBUFFORCE` /
/// `SO_SNDBUFFORCE` as root, which ignore `net.core.rmem_max` / `wmem_max`) and a firewall mark.
/// ``receive(into:)`` returns nil when nothing is waiting; poll ``fileDescriptor`` for
/// readability (see ``Poller``).
///
/// Not thread-safe: use one instance from one thread.
public final class UDPSocket {
    /// MSG_TRUNC from <sys/socket.h> (0x20 on Linux); Glibc's Swift overlay does not always export it.
    static let messageTruncated: Int32 = 0x20
    /// The socket's file descriptor, -1 once closed.
    public private(set) var fileDescriptor: Int32
    /// The address the socket is bound to.
    public let address: IPv4Address
    /// The port the socket is bound to (the kernel's choice when 0 was asked for).
    public let port: UInt16

    /// Opens the socket and binds it.
    ///
    /// - Parameters:
    ///   - address: the local address; `IPv4Address(0)` binds to every address.
    ///   - port: the local port; 0 lets the kernel choose (read it back from ``port``).
    ///   - receiveBufferBytes: receive buffer size, if it should differ from the system default.
    ///   - sendBufferBytes: send buffer size, if it should differ from the system default.
    ///   - mark: `SO_MARK` for every datagram sent (needs CAP_NET_ADMIN).
    ///   - reuseAddress: set `SO_REUSEADDR`. On Linux this lets a *second* UDP socket that also
    ///     sets it bind the same address and port, and the two then share the datagrams; pass
    ///     false to have such a second bind fail with ``LinuxShellError/Code/addressInUse``.
    public init(
        address: IPv4Address,
        port: UInt16,
        receiveBufferBytes: Int? = nil,
        sendBufferBytes: Int? = nil,
        mark: UInt32? = nil,
        reuseAddress: Bool = true
    ) throws(LinuxShellError) {
        let operation = "open UDP socket on \(address):\(port)"
        let descriptor: Int32
        do {
            descriptor = try systemCall("socket(AF_INET, SOCK_DGRAM)") {
                socket(AF_INET, SocketType.datagram | SocketType.nonblocking | SocketType.closeOnExec, 0)
            }
        } catch {
            throw .classifying(error, operation: operation)
        }
        var boundPort = port
        do {
            if reuseAddress {
                try setIntegerSocketOption(
                    descriptor,
                    level: SOL_SOCKET,
                    option: SO_REUSEADDR,
                    value: 1,
                    name: "setsockopt(SO_REUSEADDR)"
                )
            }
            if let receiveBufferBytes {
                try setSocketBufferSize(descriptor, receive: true, bytes: receiveBufferBytes)
            }
            if let sendBufferBytes {
                try setSocketBufferSize(descriptor, receive: false, bytes: sendBufferBytes)
            }
            if let mark {
                try setIntegerSocketOption(
                    descriptor,
                    level: SOL_SOCKET,
                    option: SO_MARK,
                    value: Int32(bitPattern: mark),
                    name: "setsockopt(SO_MARK)"
                )
            }
            var local = socketAddress(address, port)
            _ = try withUnsafePointer(to: &local) { pointer throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(SystemCallError) in
                    try systemCall("bind(\(address):\(port))") {
                        bind(descriptor, generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = try withUnsafeMutablePointer(to: &local) { pointer throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(SystemCallError) in
                    try systemCall("getsockname") { getsockname(descriptor, generic, &length) }
                }
            }
            boundPort = UInt16(bigEndian: local.sin_port)
        } catch {
            Glibc.close(descriptor)
            throw .classifying(error, operation: operation)
        }
        fileDescriptor = descriptor
        self.address = address
        self.port = boundPort
    }

    deinit { close() }

    /// Closes the socket; closing again does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Sends one datagram.
    ///
    /// Throws ``LinuxShellError/Code/wouldBlock`` when the send buffer is full,
    /// ``LinuxShellError/Code/packetTooLarge`` for a datagram over 65,507 bytes.
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: IPv4Address, port destinationPort: UInt16)
        throws(LinuxShellError)
    {
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: "send UDP datagram") }
        var remote = socketAddress(destination, destinationPort)
        let descriptor = fileDescriptor
        // sendto wants a non-nil pointer even for an empty datagram.
        let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        do {
            _ = try withUnsafePointer(to: &remote) { pointer throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(SystemCallError) in
                    try systemCall("sendto(UDP)") {
                        sendto(descriptor, base, bytes.count, 0, generic, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        } catch {
            throw .classifying(
                error,
                operation: "send UDP datagram of \(bytes.count) bytes to \(destination):\(destinationPort)"
            )
        }
    }

    /// Receives one datagram into `buffer`.
    ///
    /// - Returns: the datagram's length and sender, or nil when none is waiting (EAGAIN).
    /// - Throws: ``LinuxShellError/Code/datagramTruncated`` when the datagram was longer than
    ///   `buffer` (the datagram is consumed).
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(LinuxShellError) -> (
        length: Int, from: IPv4Address, port: UInt16
    )? {
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: "receive UDP datagram") }
        var remote = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = fileDescriptor
        let received: Int
        do {
            received = try withUnsafeMutablePointer(to: &remote) { pointer throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(SystemCallError) in
                    try systemCall("recvfrom(UDP)") {
                        recvfrom(descriptor, buffer.baseAddress, buffer.count, Self.messageTruncated, generic, &length)
                    }
                }
            }
        } catch {
            if error.errno == EAGAIN || error.errno == EWOULDBLOCK { return nil }
            throw .classifying(error, operation: "receive UDP datagram on \(address):\(port)")
        }
        let sender = IPv4Address(UInt32(bigEndian: remote.sin_addr.s_addr))
        let senderPort = UInt16(bigEndian: remote.sin_port)
        if received > buffer.count {
            throw LinuxShellError(
                .datagramTruncated,
                operation: "receive UDP datagram on \(address):\(port)",
                detail:
                    "a \(received)-byte datagram from \(sender):\(senderPort) did not fit into \(buffer.count) bytes"
            )
        }
        return (received, sender, senderPort)
    }
}

/// A `sockaddr_in` for an address and port given in host order.
func socketAddress(_ address: IPv4Address, _ port: UInt16) -> sockaddr_in {
    var result = sockaddr_in()
    result.sin_family = sa_family_t(AF_INET)
    result.sin_port = port.bigEndian
    result.sin_addr.s_addr = address.value.bigEndian
    return result
}
