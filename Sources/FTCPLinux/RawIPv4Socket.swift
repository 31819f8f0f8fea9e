import Glibc

/// A raw IPv4 socket (`AF_INET`, `SOCK_RAW`, `IPPROTO_RAW`) that sends whole IPv4 packets the
/// caller built, header included: how a bridge emits the segments it rewrote or merged.
///
/// `IPPROTO_RAW` implies `IP_HDRINCL`: the kernel takes the header as given, except that it always
/// fills in the header checksum and the total length, and fills in the identification (when 0)
/// and the source address (when 0.0.0.0). The packet is routed by its destination address.
///
/// Give the socket a ``mark`` (`SO_MARK`) so that the bridge's own packets can be excluded from
/// its NFQUEUE rules (`meta mark != <mark>`) instead of being queued to it again.
///
/// Not thread-safe: use one instance from one thread. Needs CAP_NET_RAW (and CAP_NET_ADMIN for
/// the mark and the forced buffer size).
public final class RawIPv4Socket {
    /// The socket's file descriptor, -1 once closed (poll it for writability when nonblocking).
    public private(set) var fileDescriptor: Int32
    /// The firewall mark every packet sent through this socket carries, if one was set.
    public let mark: UInt32?

    /// Opens the socket.
    ///
    /// - Parameters:
    ///   - mark: the `SO_MARK` for every packet sent; nil leaves packets unmarked.
    ///   - sendBufferBytes: the send buffer size (`SO_SNDBUFFORCE` as root, else `SO_SNDBUF`).
    ///   - nonblocking: when true, a full send buffer makes ``send(_:)-(UnsafeRawBufferPointer)``
    ///     throw ``LinuxShellError/Code/wouldBlock`` instead of waiting.
    public init(mark: UInt32? = nil, sendBufferBytes: Int? = nil, nonblocking: Bool = false) throws(LinuxShellError) {
        let type = SocketType.raw | SocketType.closeOnExec | (nonblocking ? SocketType.nonblocking : 0)
        let descriptor: Int32
        do {
            descriptor = try systemCall("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)") {
                socket(AF_INET, Int32(type), Int32(IPPROTO_RAW))
            }
        } catch {
            throw .classifying(error, operation: "open raw IPv4 socket")
        }
        fileDescriptor = descriptor
        self.mark = mark
        do {
            if let mark {
                try setIntegerSocketOption(
                    descriptor,
                    level: SOL_SOCKET,
                    option: SO_MARK,
                    value: Int32(bitPattern: mark),
                    name: "setsockopt(SO_MARK)"
                )
            }
            if let sendBufferBytes {
                try setSocketBufferSize(descriptor, receive: false, bytes: sendBufferBytes)
            }
        } catch {
            Glibc.close(descriptor)
            fileDescriptor = -1
            throw .classifying(error, operation: "configure raw IPv4 socket")
        }
    }

    deinit { close() }

    /// Closes the socket; closing again does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Sends one IPv4 packet, starting at its header, to the destination address in that header.
    ///
    /// Throws ``LinuxShellError/Code/packetTooLarge`` (EMSGSIZE) for a packet larger than the
    /// outgoing MTU, ``LinuxShellError/Code/noBufferSpace`` (ENOBUFS),
    /// ``LinuxShellError/Code/permissionDenied`` (EPERM: usually a firewall rule),
    /// ``LinuxShellError/Code/wouldBlock`` on a full nonblocking socket, and
    /// ``LinuxShellError/Code/malformedPacket`` when the bytes do not start with an IPv4 header.
    public func send(_ packet: UnsafeRawBufferPointer) throws(LinuxShellError) {
        try send(headers: packet, payload: [])
    }

    /// Sends one IPv4 packet whose start (at least its IPv4 header) is `headers` and whose rest
    /// is `pieces`, in order, wherever they lie: the kernel gathers them, so no byte is copied
    /// in this process to join them. Throws as ``send(_:)-(UnsafeRawBufferPointer)`` does.
    public func send(headers packet: UnsafeRawBufferPointer, payload pieces: [UnsafeRawBufferPointer])
        throws(LinuxShellError)
    {
        let length = packet.count + pieces.reduce(0) { $0 + $1.count }
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: "send raw packet") }
        guard packet.count >= 20, packet[0] >> 4 == 4, packet[0] & 0x0f >= 5 else {
            throw LinuxShellError(
                .malformedPacket,
                operation: "send raw packet",
                detail: "\(length) bytes that do not start with an IPv4 header, in \(pieces.count + 1) pieces"
            )
        }
        guard pieces.count <= 1_000 else {
            throw LinuxShellError(
                .malformedPacket,
                operation: "send raw packet",
                detail: "\(length) bytes in \(pieces.count + 1) pieces: the kernel gathers at most 1,024"
            )
        }
        let destination =
            UInt32(packet[16]) << 24 | UInt32(packet[17]) << 16 | UInt32(packet[18]) << 8
            | UInt32(packet[19])
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = destination.bigEndian
        let descriptor = fileDescriptor
        let sent: Int
        do {
            sent = try withUnsafeMutablePointer(to: &address) { pointer throws(SystemCallError) in
                try withGatheredVectors(packet, pieces: pieces) { vectors throws(SystemCallError) in
                    try systemCall("sendmsg(raw IPv4)") {
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(pointer)
                        message.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
                        message.msg_iov = vectors.baseAddress
                        message.msg_iovlen = vectors.count
                        return sendmsg(descriptor, &message, 0)
                    }
                }
            }
        } catch {
            let text =
                "\(destination >> 24).\(destination >> 16 & 0xff).\(destination >> 8 & 0xff).\(destination & 0xff)"
            throw .classifying(error, operation: "send raw packet of \(length) bytes to \(text)")
        }
        if sent != length {
            throw LinuxShellError(
                .systemCall,
                operation: "send raw packet",
                detail: "the kernel took \(sent) of \(length) bytes"
            )
        }
    }

    /// Sends one IPv4 packet held in an array; see ``send(_:)-(UnsafeRawBufferPointer)``.
    public func send(_ bytes: [UInt8]) throws(LinuxShellError) {
        let outcome: Result<Void, LinuxShellError> = bytes.withUnsafeBytes { buffer in
            do throws(LinuxShellError) {
                try send(buffer)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
    }
}
