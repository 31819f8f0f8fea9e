import Glibc

/// A Unix-domain stream socket on which a running bridge answers requests: the client writes
/// one request line (`status`, `switchover`; nothing at all counts as `status`) and gets one
/// JSON document, and the connection is closed.
///
/// The path is configurable so that two bridges can run on one machine (in
/// different network namespaces, which do not separate the file system).
public final class ControlSocket {
    public let path: String
    private var fd: Int32 = -1

    /// Binds and listens at `path`, replacing a stale socket file left by a
    /// crashed run, but refusing if another bridge is answering there.
    public init(path: String) throws(SystemCallError) {
        self.path = path
        if Self.isAnswering(path: path) {
            throw SystemCallError(
                call: "bind(\(path)): another ftcp-bridge answers on this control socket",
                errno: EADDRINUSE
            )
        }
        unlink(path)
        fd = try systemCall("socket(AF_UNIX)") {
            socket(AF_UNIX, SocketType.stream | SocketType.nonblocking | SocketType.closeOnExec, 0)
        }
        var address = try Self.address(path)
        let descriptor = fd
        do throws(SystemCallError) {
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if bound != 0 { throw SystemCallError(call: "bind(\(path))", errno: errno) }
            chmod(path, 0o600)
            try systemCall("listen(\(path))") { listen(descriptor, 16) }
        } catch {
            Glibc.close(descriptor)
            fd = -1
            throw error
        }
    }

    deinit { close() }

    public var fileDescriptor: Int32 { fd }

    /// A reply the client has not taken whole yet.
    private struct Reply {
        var client: Int32
        var bytes: [UInt8]
        var offset = 0
        var deadline: ContinuousClock.Instant
    }

    private var replies: [Reply] = []
    /// Most replies on their way at once; further clients are closed unanswered.
    public static let maximumPendingReplies = 16
    /// How long a client may take to read its reply before the connection is closed on it.
    public static let replyDeadline = Duration.seconds(2)
    /// Replies cut because their client did not read them within ``replyDeadline``.
    public private(set) var repliesAbandoned: UInt64 = 0
    /// Clients closed unanswered because ``maximumPendingReplies`` were on their way.
    public private(set) var repliesRefused: UInt64 = 0

    /// Answers every waiting client with what `respond` makes of its request line. Never waits
    /// for a client to read (the loop that answers also moves packets and heartbeats): what the
    /// socket does not take at once is sent by ``flushReplies()`` on later turns.
    public func answerPending(_ respond: (String) -> String) {
        flushReplies()
        while fd >= 0 {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            guard replies.count < Self.maximumPendingReplies else {
                // Too many readers at once: this one gets nothing (left in the listen queue, it
                // would keep the socket readable and the loop awake).
                Glibc.close(client)
                repliesRefused += 1
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            var text = respond(Self.readRequest(client))
            text += "\n"
            replies.append(Reply(client: client, bytes: Array(text.utf8), deadline: .now + Self.replyDeadline))
            flushReplies()
        }
    }

    /// Sends what the socket takes of each pending reply, without waiting; closes each client
    /// whose reply is complete, failed or past its deadline. Cheap when nothing is pending: call
    /// it every turn of the loop.
    public func flushReplies() {
        guard !replies.isEmpty else { return }
        let now = ContinuousClock.now
        var index = 0
        while index < replies.count {
            if advance(&replies[index], now: now) {
                Glibc.close(replies[index].client)
                replies.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// Sends what the socket takes of `reply`; returns whether it is done with (sent whole,
    /// failed, or past its deadline).
    private func advance(_ reply: inout Reply, now: ContinuousClock.Instant) -> Bool {
        while reply.offset < reply.bytes.count {
            let offset = reply.offset
            let client = reply.client
            let written = reply.bytes.withUnsafeBytes { bytes in
                send(client, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if written > 0 {
                reply.offset += written
                continue
            }
            guard written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) else { return true }
            if now < reply.deadline { return false }
            repliesAbandoned += 1
            return true
        }
        return true
    }

    /// The client's request line. A client writes it at once after connecting, so it is read
    /// without blocking, after at most 5 ms of waiting: the loop that answers also moves packets.
    private static func readRequest(_ client: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        var count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
            var entry = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 5) > 0 {
                count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
        }
        guard count > 0 else { return "status" }
        let line = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").first ?? ""
        let request = String(line.filter { !$0.isWhitespace })
        return request.isEmpty ? "status" : request
    }

    /// Closes the socket and removes its file.
    public func close() {
        for reply in replies { Glibc.close(reply.client) }
        replies = []
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
        unlink(path)
    }

    /// Connects to a running bridge's control socket, sends `request` and returns the answer.
    public static func query(path: String, request: String = "status") throws(SystemCallError) -> String {
        let fd = try systemCall("socket(AF_UNIX)") { socket(AF_UNIX, SocketType.stream | SocketType.closeOnExec, 0) }
        defer { Glibc.close(fd) }
        var address = try address(path)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected != 0 { throw SystemCallError(call: "connect(\(path))", errno: errno) }
        let line = Array((request + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        shutdown(fd, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw SystemCallError(call: "read(\(path))", errno: errno) }
            if count == 0 { break }
            result += buffer[0..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }

    private static func isAnswering(path: String) -> Bool {
        let fd = socket(AF_UNIX, SocketType.stream | SocketType.closeOnExec, 0)
        guard fd >= 0, var address = try? address(path) else { return false }
        defer { Glibc.close(fd) }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    private static func address(_ path: String) throws(SystemCallError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw SystemCallError(
                call: "control socket path \(path) is longer than \(capacity - 1) bytes",
                errno: ENAMETOOLONG
            )
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return address
    }
}
