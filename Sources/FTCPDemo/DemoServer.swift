import Glibc

/// The demo application's TCP server: one ``DemoSession`` per connection, all served by one
/// thread from a `poll(2)` loop over nonblocking sockets.
///
/// Drive it with ``run(until:)``, or one round at a time with ``step(timeoutMilliseconds:)`` (which
/// is how a test serves a client from the same thread). At ``maximumConnections`` the listener
/// is not polled, so further clients wait in the kernel's accept queue.
///
/// A finished session's connection is shut down for writing (a FIN), then read and discarded
/// until the client closes too, for at most ``lingerMilliseconds``; closing with unread data
/// would make the kernel send an RST instead.
public final class DemoServer {
    /// How long a connection whose session finished waits for the client's FIN.
    public static let lingerMilliseconds: Int64 = 5_000

    private struct Connection {
        var descriptor: Int32
        var peer: String
        var session = DemoSession()
        /// When the session finished and our FIN went out; the connection now only drains input.
        var lingerDeadline: Int64?
        var peerClosed = false
    }

    /// The address the listener is bound to.
    public let address: DemoServerAddress
    /// The port the listener is bound to (the kernel's choice when 0 was asked for).
    public let port: UInt16
    /// The most connections served at once.
    public let maximumConnections: Int
    /// How many connections are open.
    public var connectionCount: Int { connections.count }

    private var listener: Int32
    private var connections: [Connection] = []
    private var pollDescriptors: [pollfd] = []
    private var readBuffer: UnsafeMutableRawBufferPointer
    private let log: (String) -> Void

    /// Opens the listening socket.
    ///
    /// - Parameters:
    ///   - address: where to listen; port 0 lets the kernel choose (read it back from ``port``).
    ///   - maximumConnections: the most connections served at once.
    ///   - log: receives one line per connection opened or closed.
    public init(
        address: DemoServerAddress,
        maximumConnections: Int = 1024,
        log: @escaping (String) -> Void
    ) throws(DemoServerError) {
        precondition(maximumConnections > 0, "maximumConnections must be positive")
        let descriptor = socket(
            AF_INET,
            Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue),
            0
        )
        guard descriptor >= 0 else { throw DemoServerError(step: "socket", address: address, errno: errno) }
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var local = address.socketAddress
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw DemoServerError(step: "bind", address: address, errno: code)
        }
        guard listen(descriptor, 128) == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw DemoServerError(step: "listen", address: address, errno: code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        listener = descriptor
        self.address = address
        port = UInt16(bigEndian: local.sin_port)
        self.maximumConnections = maximumConnections
        self.log = log
        readBuffer = .allocate(byteCount: DemoSession.inputCapacity, alignment: 16)
    }

    deinit {
        close()
        readBuffer.deallocate()
    }

    /// Closes the listener and every connection; closing again does nothing.
    public func close() {
        if listener >= 0 {
            Glibc.close(listener)
            listener = -1
        }
        while let connection = connections.popLast() {
            Glibc.close(connection.descriptor)
            log(
                "close \(connection.peer): server stopping, received \(connection.session.bytesReceived) bytes, "
                    + "sent \(connection.session.bytesSent) bytes"
            )
        }
    }

    /// Serves connections until `shouldStop` returns true (checked at least every 200 ms), then
    /// closes the listener and every connection.
    public func run(until shouldStop: () -> Bool) throws(DemoServerError) {
        while !shouldStop() {
            try step(timeoutMilliseconds: 200)
        }
        close()
    }

    /// Waits up to `timeoutMilliseconds` for something to do, then accepts, reads and writes what
    /// it can without blocking.
    public func step(timeoutMilliseconds: Int32) throws(DemoServerError) {
        guard listener >= 0 else { throw DemoServerError(step: "serve", address: address, errno: EBADF) }
        pollDescriptors.removeAll(keepingCapacity: true)
        let listening = connections.count < maximumConnections
        pollDescriptors.append(pollfd(fd: listening ? listener : -1, events: Int16(POLLIN), revents: 0))
        for connection in connections {
            var events: Int32 = 0
            if connection.lingerDeadline != nil || connection.session.wantsInput { events |= Int32(POLLIN) }
            if connection.session.hasOutput { events |= Int32(POLLOUT) }
            pollDescriptors.append(pollfd(fd: connection.descriptor, events: Int16(events), revents: 0))
        }
        var timeout = timeoutMilliseconds
        if connections.contains(where: { $0.lingerDeadline != nil }) { timeout = min(timeout < 0 ? 200 : timeout, 200) }
        let ready = pollDescriptors.withUnsafeMutableBufferPointer {
            poll($0.baseAddress, nfds_t($0.count), timeout)
        }
        if ready < 0 {
            if errno == EINTR { return }
            throw DemoServerError(step: "poll", address: address, errno: errno)
        }

        if listening, pollDescriptors[0].revents != 0 { acceptConnections() }

        let now = monotonicMilliseconds()
        var index = 0
        // pollDescriptors[i + 1] belongs to connections[i] for the connections that existed before
        // accepting; newly accepted ones come after and are served from the next round on.
        let polledCount = pollDescriptors.count - 1
        var closing: [Int] = []
        while index < polledCount {
            let events = Int32(pollDescriptors[index + 1].revents)
            if let reason = serve(&connections[index], events: events, now: now) {
                closing.append(index)
                let connection = connections[index]
                log(
                    "close \(connection.peer): \(reason), received \(connection.session.bytesReceived) bytes, "
                        + "sent \(connection.session.bytesSent) bytes"
                )
                Glibc.close(connection.descriptor)
            }
            index += 1
        }
        for index in closing.reversed() { connections.remove(at: index) }
    }

    /// Accepts waiting connections up to the limit.
    private func acceptConnections() {
        while connections.count < maximumConnections {
            var remote = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let descriptor = withUnsafeMutablePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept(listener, $0, &length)
                }
            }
            guard descriptor >= 0 else {
                // EAGAIN: none left. ECONNABORTED and the like concern one client; EMFILE leaves it
                // in the queue for a later round. Either way, stop for this round.
                if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED {
                    log("accept failed: \(String(cString: strerror(errno))) (errno \(errno))")
                }
                return
            }
            // accept4 is not visible from Swift's Glibc module: set the flags afterwards.
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            var on: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            let peer = DemoServerAddress(
                host: UInt32(bigEndian: remote.sin_addr.s_addr),
                port: UInt16(bigEndian: remote.sin_port)
            )
            connections.append(Connection(descriptor: descriptor, peer: peer.description))
            log("open \(peer) (\(connections.count) connections)")
        }
    }

    /// Reads and writes what one connection allows now; returns why it should close, if it should.
    private func serve(_ connection: inout Connection, events: Int32, now: Int64) -> String? {
        if events & Int32(POLLNVAL) != 0 { return "descriptor invalid" }
        if let deadline = connection.lingerDeadline {
            // Drain and discard until the client closes or the deadline passes.
            while true {
                let count = recv(connection.descriptor, readBuffer.baseAddress, readBuffer.count, 0)
                if count > 0 { continue }
                if count == 0 { return "finished" }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                return "finished (\(String(cString: strerror(errno))) while draining)"
            }
            return now >= deadline ? "finished (client did not close within \(Self.lingerMilliseconds) ms)" : nil
        }

        if connection.session.wantsInput, events & Int32(POLLIN | POLLHUP | POLLERR) != 0 {
            let space = min(readBuffer.count, connection.session.inputSpace)
            let count = recv(connection.descriptor, readBuffer.baseAddress, space, 0)
            if count > 0 {
                connection.session.receive(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
            } else if count == 0 {
                connection.peerClosed = true
                connection.session.receiveEnd()
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                return "receive failed: \(String(cString: strerror(errno)))"
            }
        }

        // Write while the socket takes it, bounded so one fast reader cannot starve the others.
        var written = 0
        while connection.session.hasOutput, written < 4 << 20 {
            let descriptor = connection.descriptor
            var failure: Int32 = 0
            let sent = connection.session.sendOutput { buffer in
                let result = send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
                if result < 0 {
                    failure = errno
                    return 0
                }
                return result
            }
            if failure == EAGAIN || failure == EWOULDBLOCK { break }
            if failure == EINTR { continue }
            if failure != 0 { return "send failed: \(String(cString: strerror(failure)))" }
            if sent == 0 { break }
            written += sent
        }

        if connection.session.isFinished {
            shutdown(connection.descriptor, Int32(SHUT_WR))
            if connection.peerClosed { return "finished" }
            connection.lingerDeadline = now + Self.lingerMilliseconds
        }
        return nil
    }
}

/// An IPv4 address and TCP port for the demo server, written `a.b.c.d:port`.
public struct DemoServerAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in host byte order.
    public var host: UInt32
    public var port: UInt16

    public init(host: UInt32, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `a.b.c.d:port`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var host: UInt32 = 0
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt8(octet)
            else { return nil }
            host = host << 8 | UInt32(value)
        }
        self.init(host: host, port: port)
    }

    public var description: String {
        "\(host >> 24).\(host >> 16 & 0xff).\(host >> 8 & 0xff).\(host & 0xff):\(port)"
    }

    var socketAddress: sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = port.bigEndian
        result.sin_addr.s_addr = host.bigEndian
        return result
    }
}

/// Why the demo server could not listen or serve, with advice.
public struct DemoServerError: Error, Sendable, CustomStringConvertible {
    /// The step that failed: `"socket"`, `"bind"`, `"listen"`, `"poll"`, `"serve"`.
    public let step: String
    public let address: DemoServerAddress
    public let errno: Int32

    public init(step: String, address: DemoServerAddress, errno: Int32) {
        self.step = step
        self.address = address
        self.errno = errno
    }

    public var description: String {
        var text = "demo server on \(address): \(step) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        switch errno {
        case EADDRINUSE: text += "; another program listens on port \(address.port): stop it or pass another --listen"
        case EADDRNOTAVAIL:
            text += "; the address is not assigned here: check `ip -brief addr` in this network namespace"
        case EACCES: text += "; ports below 1024 need root (CAP_NET_BIND_SERVICE)"
        case EBADF where step == "serve": text += "; the server was closed"
        default: break
        }
        return text
    }
}

/// Milliseconds of `CLOCK_MONOTONIC`.
private func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
