import FTCPLinux
import Foundation
import Glibc
import Synchronization
import Testing

@Suite("Control socket")
struct ControlSocketTests {
    static func path(_ name: String) -> String { "/tmp/ftcp-control-test-\(getpid())-\(name).sock" }

    /// A client that connects and asks, then does not read.
    static func silentClient(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(connected == 0)
        _ = "status\n".withCString { write(fd, $0, 7) }
        return fd
    }

    @Test("a 4 MiB answer to a reader that does not read never holds the loop; it goes out as the reader takes it")
    func neverWaitsForTheReader() throws {
        let path = Self.path("slow")
        let control = try ControlSocket(path: path)
        defer { control.close() }
        let answer = String(repeating: "x", count: 4 << 20)
        let client = try Self.silentClient(path)
        defer { Glibc.close(client) }
        let started = ContinuousClock.now
        control.answerPending { _ in answer }
        let held = started.duration(to: .now)
        #expect(held < .milliseconds(200), "answering held the loop for \(held)")

        // Now the reader reads, while the loop flushes on its turns.
        let received = Mutex(0)
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                received.withLock { $0 += count }
            }
        }
        reader.start()
        let deadline = ContinuousClock.now + .seconds(5)
        while received.withLock({ $0 }) < answer.utf8.count + 1 && ContinuousClock.now < deadline {
            control.flushReplies()
            usleep(1_000)
        }
        #expect(received.withLock { $0 } == answer.utf8.count + 1)
        #expect(control.repliesAbandoned == 0)
    }

    @Test("a reader that never reads gets its answer cut after 2 s and the connection closed")
    func abandonsASilentReader() throws {
        let path = Self.path("silent")
        let control = try ControlSocket(path: path)
        defer { control.close() }
        let client = try Self.silentClient(path)
        defer { Glibc.close(client) }
        control.answerPending { _ in String(repeating: "y", count: 4 << 20) }
        let deadline = ContinuousClock.now + .seconds(4)
        while control.repliesAbandoned == 0 && ContinuousClock.now < deadline {
            control.flushReplies()
            usleep(10_000)
        }
        #expect(control.repliesAbandoned == 1)
    }
}
