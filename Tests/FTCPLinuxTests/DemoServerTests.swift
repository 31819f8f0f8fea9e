import FTCPDemo
import FTCPLinux
import Glibc
import Testing

/// The demo server over loopback, served from the test's own thread: the client writes and reads
/// nonblocking and lets the server take a step in between.
@Suite struct DemoServerTests {
    /// A nonblocking TCP client that drives `server` while it waits.
    final class Client {
        let descriptor: Int32
        let server: DemoServer
        var received: [UInt8] = []
        var endOfStream = false

        init(server: DemoServer) throws {
            self.server = server
            descriptor = socket(AF_INET, SocketType.stream | SocketType.nonblocking, 0)
            try #require(descriptor >= 0)
            var remote = sockaddr_in()
            remote.sin_family = sa_family_t(AF_INET)
            remote.sin_port = server.port.bigEndian
            remote.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let result = withUnsafePointer(to: &remote) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(result == 0 || errno == EINPROGRESS)
        }

        deinit { close(descriptor) }

        /// Moves bytes both ways until `done` holds or the time limit passes.
        func pump(sending bytes: [UInt8] = [], seconds: Int = 20, until done: (Client) -> Bool) throws {
            var offset = 0
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let deadline = time(nil) + seconds
            while !(offset == bytes.count && done(self)) {
                try #require(time(nil) < deadline, "timed out; received \(received.count) bytes so far")
                if offset < bytes.count {
                    let sent = bytes.withUnsafeBytes {
                        send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                    }
                    if sent > 0 { offset += sent }
                }
                try server.step(timeoutMilliseconds: 2)
                while !endOfStream {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        received += buffer[0..<count]
                    } else if count == 0 {
                        endOfStream = true
                    } else {
                        break
                    }
                }
            }
        }

        /// Sends `text` and waits for `replyBytes` more bytes; returns them.
        func exchange(_ bytes: [UInt8], replyBytes: Int) throws -> [UInt8] {
            let start = received.count
            try pump(sending: bytes) { $0.received.count >= start + replyBytes || $0.endOfStream }
            return Array(received[start...])
        }

        func exchange(_ text: String) throws -> String {
            let start = received.count
            try pump(sending: Array(text.utf8)) { client in
                client.endOfStream
                    || client.received[start...].filter { $0 == UInt8(ascii: "\n") }.count
                        >= text.utf8.filter { $0 == UInt8(ascii: "\n") }.count
            }
            return String(decoding: received[start...], as: UTF8.self)
        }
    }

    private func makeServer(_ log: @escaping (String) -> Void = { _ in }) throws -> DemoServer {
        try DemoServer(address: DemoServerAddress("127.0.0.1:0")!, log: log)
    }

    @Test func fullSession() throws {
        var logLines: [String] = []
        let server = try makeServer { logLines.append($0) }
        let client = try Client(server: server)
        #expect(try client.exchange("HELLO alice\n") == "WELCOME alice session-1\n")
        #expect(try client.exchange("ADD 40\nADD 2\n") == "TOTAL 40\nTOTAL 42\n")
        #expect(try client.exchange("ECHO over the loop\n") == "over the loop\n")
        let stream = try client.exchange(Array("SEND 100000\n".utf8), replyBytes: 100_000)
        let streamMatches = stream == DemoByteStream.bytes(from: 0, count: 100_000)
        #expect(streamMatches)
        let upload = DemoByteStream.bytes(from: 12_345, count: 100_000)
        let reply = try client.exchange(Array("RECV 100000\n".utf8) + upload, replyBytes: 88)
        #expect(
            String(decoding: reply, as: UTF8.self) == "RECEIVED 100000 sha256=\(ContentDigest.hexDigest(of: upload))\n"
        )
        #expect(try client.exchange("QUIT\n") == "BYE total=42\n")
        // The server ends the connection with a FIN (recv returns 0), not an RST.
        try client.pump { $0.endOfStream }
        shutdown(client.descriptor, Int32(SHUT_WR))
        try client.pump { _ in server.connectionCount == 0 }
        let sentByClient = 12 + 13 + 19 + 12 + 12 + 100_000 + 5
        let sentByServer = 24 + 18 + 14 + 100_000 + 88 + 13
        #expect(client.received.count == sentByServer)
        #expect(logLines.count == 2)
        #expect(logLines.first?.hasPrefix("open 127.0.0.1:") == true)
        #expect(
            logLines.last?.hasSuffix("finished, received \(sentByClient) bytes, sent \(sentByServer) bytes") == true
        )
    }

    @Test func halfClosedClientStillGetsItsStream() throws {
        let server = try makeServer()
        let client = try Client(server: server)
        try client.pump(sending: Array("HELLO h\nSEND 3000000\nADD 1\n".utf8)) { _ in server.connectionCount == 1 }
        shutdown(client.descriptor, Int32(SHUT_WR))
        try client.pump { $0.endOfStream }
        let header = Array("WELCOME h session-1\n".utf8)
        let stream = DemoByteStream.bytes(from: 0, count: 3_000_000)
        #expect(client.received.count == header.count + stream.count + 8)
        let streamMatches =
            client.received.count == header.count + stream.count + 8
            && Array(client.received.prefix(header.count)) == header
            && Array(client.received[header.count..<(header.count + stream.count)]) == stream
        #expect(streamMatches)
        #expect(String(decoding: client.received.suffix(8), as: UTF8.self) == "TOTAL 1\n")
        try client.pump { _ in server.connectionCount == 0 }
    }

    @Test func manyConcurrentConnectionsKeepSeparateSessions() throws {
        let server = try makeServer()
        let clients = try (0..<40).map { _ in try Client(server: server) }
        for (index, client) in clients.enumerated() {
            try client.pump(sending: Array("HELLO c\(index)\nADD \(index)\nSEND 20000\n".utf8)) { _ in true }
        }
        for (index, client) in clients.enumerated() {
            let header = "WELCOME c\(index) session-1\nTOTAL \(index)\n"
            try client.pump { $0.received.count >= header.utf8.count + 20_000 }
            #expect(Array(client.received.prefix(header.utf8.count)) == Array(header.utf8))
            let streamMatches =
                Array(client.received.dropFirst(header.utf8.count)) == DemoByteStream.bytes(from: 0, count: 20_000)
            #expect(streamMatches, "client \(index)")
        }
        #expect(server.connectionCount == 40)
        server.close()
        #expect(server.connectionCount == 0)
    }

    @Test func connectionLimitHoldsFurtherClientsInTheQueue() throws {
        let server = try DemoServer(address: DemoServerAddress("127.0.0.1:0")!, maximumConnections: 2) { _ in }
        let first = try Client(server: server)
        let second = try Client(server: server)
        let third = try Client(server: server)
        #expect(try first.exchange("ECHO 1\n") == "1\n")
        #expect(try second.exchange("ECHO 2\n") == "2\n")
        try third.pump(sending: Array("ECHO 3\n".utf8)) { _ in true }
        for _ in 0..<20 { try server.step(timeoutMilliseconds: 1) }
        #expect(server.connectionCount == 2)
        #expect(try first.exchange("QUIT\n") == "BYE total=0\n")
        shutdown(first.descriptor, Int32(SHUT_WR))
        try third.pump { $0.received == Array("3\n".utf8) }
    }

    @Test func addressParsing() {
        #expect(DemoServerAddress("0.0.0.0:9999") == DemoServerAddress(host: 0, port: 9999))
        #expect(DemoServerAddress("10.97.0.2:80")?.description == "10.97.0.2:80")
        #expect(DemoServerAddress("10.97.0.2") == nil)
        #expect(DemoServerAddress("10.97.0:80") == nil)
        #expect(DemoServerAddress("10.97.0.256:80") == nil)
        #expect(DemoServerAddress("10.97.0.1:65536") == nil)
    }

    @Test func bindingATakenPortSaysWhatToDo() throws {
        let server = try makeServer()
        #expect {
            _ = try DemoServer(address: DemoServerAddress(host: 0x7f00_0001, port: server.port)) { _ in }
        } throws: { error in
            "\(error)".contains("another program listens on port \(server.port)")
        }
    }
}
