import FTCPWire
import Foundation
import Glibc

/// A minimal HTTP/1.1 server for one resource, `GET /metrics`, on a thread of its own: what a
/// Prometheus server scrapes. Never on the packet path: the loop only updates the values the
/// `body` closure reads (thread-safe), and a slow or hostile client holds this thread for at
/// most ``requestTimeoutMilliseconds``, one connection at a time.
public final class MetricsEndpoint: Sendable {
    public static let requestTimeoutMilliseconds = 1_000
    /// The largest request head read; a longer one is answered 431.
    public static let maximumRequestBytes = 8_192

    private let descriptor: Int32
    public let address: IPv4Address
    public let port: UInt16

    /// Binds `address:port` (port 0: any free port, see ``port``) and starts serving.
    /// `body` is called for each scrape, on the endpoint's thread.
    public init(
        address: IPv4Address,
        port: UInt16,
        body: @escaping @Sendable () -> [UInt8]
    ) throws(LinuxShellError) {
        let descriptor: Int32
        do {
            descriptor = try systemCall("socket(AF_INET, SOCK_STREAM)") {
                socket(AF_INET, Int32(SocketType.stream | SocketType.closeOnExec), 0)
            }
        } catch {
            throw .classifying(error, operation: "open the metrics socket")
        }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr = in_addr(s_addr: address.value.bigEndian)
        do {
            _ = try systemCall("bind(\(address):\(port))") {
                withUnsafePointer(to: &socketAddress) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            _ = try systemCall("listen") { listen(descriptor, 16) }
        } catch {
            Glibc.close(descriptor)
            throw .classifying(error, operation: "listen for metrics scrapes on \(address):\(port)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        self.address = address
        self.port = UInt16(bigEndian: actual.sin_port)
        Thread.detachNewThread { [descriptor] in Self.serve(descriptor, body: body) }
    }

    /// Stops accepting scrapes (the thread ends at its next accept).
    public func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
    }

    private static func serve(_ listener: Int32, body: @Sendable () -> [UInt8]) {
        while true {
            let client = accept(listener, nil, nil)
            if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // closed
            }
            var timeout = timeval(tv_sec: 0, tv_usec: Int(requestTimeoutMilliseconds) * 1_000)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            answer(client, body: body)
            Glibc.close(client)
        }
    }

    private static func answer(_ client: Int32, body: () -> [UInt8]) {
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2_048)
        while !request.containsHeadEnd {
            guard request.count < maximumRequestBytes else {
                send(client, status: "431 Request Header Fields Too Large", body: Array("request too large\n".utf8))
                return
            }
            let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            request += chunk[0..<count]
        }
        let line = String(decoding: request.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "GET" else {
            send(client, status: "405 Method Not Allowed", body: Array("only GET /metrics\n".utf8))
            return
        }
        guard parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") else {
            send(client, status: "404 Not Found", body: Array("only GET /metrics\n".utf8))
            return
        }
        send(client, status: "200 OK", body: body(), contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    private static func send(
        _ client: Int32,
        status: String,
        body: [UInt8],
        contentType: String = "text/plain; charset=utf-8"
    ) {
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { return }
            sent += count
        }
    }
}

extension [UInt8] {
    fileprivate var containsHeadEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4)
        where self[index] == 0x0D && self[index + 1] == 0x0A && self[index + 2] == 0x0D && self[index + 3] == 0x0A {
            return true
        }
        return false
    }
}
