import FTCPLinux
import FTCPWire
import Glibc
import Testing

@Suite struct UDPSocketTests {
    private let loopback = IPv4Address(127, 0, 0, 1)

    @Test func sendAndReceiveOverLoopback() throws {
        let a = try UDPSocket(address: loopback, port: 0, receiveBufferBytes: 4 << 20, sendBufferBytes: 4 << 20)
        let b = try UDPSocket(address: loopback, port: 0)
        #expect(a.port != 0 && b.port != 0 && a.port != b.port)

        var buffer = [UInt8](repeating: 0, count: 2048)
        // Nothing waiting: nil, not an error.
        #expect(try buffer.withUnsafeMutableBytes { try b.receive(into: $0) } == nil)

        let message: [UInt8] = Array("replicate me".utf8) + [0, 255, 7]
        try message.withUnsafeBytes { try a.send($0, to: loopback, port: b.port) }

        let poller = Poller()
        poller.register(b.fileDescriptor)
        #expect(try poller.wait(timeoutMilliseconds: 2000) == [b.fileDescriptor])

        let result = try #require(try buffer.withUnsafeMutableBytes { try b.receive(into: $0) })
        #expect(result.length == message.count)
        #expect(result.from == loopback)
        #expect(result.port == a.port)
        #expect(Array(buffer[0..<result.length]) == message)
    }

    @Test func emptyAndLargeDatagrams() throws {
        let a = try UDPSocket(address: loopback, port: 0)
        let b = try UDPSocket(address: loopback, port: 0, receiveBufferBytes: 1 << 20)
        let large = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try [UInt8]().withUnsafeBytes { try a.send($0, to: loopback, port: b.port) }
        try large.withUnsafeBytes { try a.send($0, to: loopback, port: b.port) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let first = try #require(try buffer.withUnsafeMutableBytes { try b.receive(into: $0) })
        #expect(first.length == 0)
        let second = try #require(try buffer.withUnsafeMutableBytes { try b.receive(into: $0) })
        #expect(Array(buffer[0..<second.length]) == large)
    }

    @Test func aDatagramLargerThanTheBufferIsReportedNotCut() throws {
        let a = try UDPSocket(address: loopback, port: 0)
        let b = try UDPSocket(address: loopback, port: 0)
        try [UInt8](repeating: 1, count: 100).withUnsafeBytes { try a.send($0, to: loopback, port: b.port) }
        var small = [UInt8](repeating: 0, count: 10)
        #expect {
            _ = try small.withUnsafeMutableBytes { try b.receive(into: $0) }
        } throws: { error in
            (error as? LinuxShellError)?.code == .datagramTruncated
        }
    }

    @Test func bindingATakenPortNamesTheCause() throws {
        let a = try UDPSocket(address: loopback, port: 0, reuseAddress: false)
        #expect {
            _ = try UDPSocket(address: loopback, port: a.port, reuseAddress: false)
        } throws: { error in
            guard let error = error as? LinuxShellError else { return false }
            return error.code == .addressInUse && error.description.contains("another process holds")
        }
        #expect {
            _ = try UDPSocket(address: IPv4Address(192, 0, 2, 77), port: 0)
        } throws: { error in
            (error as? LinuxShellError)?.code == .addressNotAvailable
        }
    }

    /// Linux lets two UDP sockets that both set SO_REUSEADDR share a port: documented, and pinned here.
    @Test func reuseAddressLetsTwoSocketsShareAPort() throws {
        let a = try UDPSocket(address: loopback, port: 0)
        let b = try UDPSocket(address: loopback, port: a.port)
        #expect(a.port == b.port)
    }

    @Test func closedSocketRefusesToSend() throws {
        let a = try UDPSocket(address: loopback, port: 0)
        a.close()
        a.close()
        #expect(a.fileDescriptor == -1)
        #expect {
            try [UInt8(1)].withUnsafeBytes { try a.send($0, to: loopback, port: 9) }
        } throws: { error in
            (error as? LinuxShellError)?.code == .closed
        }
    }
}

@Suite struct PollerTests {
    private func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        return (ends[0], ends[1])
    }

    @Test func reportsOnlyReadableDescriptors() throws {
        let first = try makePipe()
        let second = try makePipe()
        defer { for fd in [first.read, first.write, second.read, second.write] { close(fd) } }
        let poller = Poller()
        poller.register(first.read)
        poller.register(second.read)
        poller.register(second.read)
        #expect(poller.registeredDescriptors == [first.read, second.read])

        #expect(try poller.wait(timeoutMilliseconds: 0).isEmpty)
        var byte: UInt8 = 42
        #expect(write(second.write, &byte, 1) == 1)
        #expect(try poller.wait(timeoutMilliseconds: 1000) == [second.read])
        #expect(write(first.write, &byte, 1) == 1)
        var ready: [Int32] = []
        ready.reserveCapacity(4)
        try poller.wait(timeoutMilliseconds: 1000, into: &ready)
        #expect(ready == [first.read, second.read])

        poller.unregister(second.read)
        try poller.wait(timeoutMilliseconds: 0, into: &ready)
        #expect(ready == [first.read])
    }

    @Test func timesOutWithNothingReady() throws {
        let ends = try makePipe()
        defer { close(ends.read); close(ends.write) }
        let poller = Poller()
        poller.register(ends.read)
        var before = timespec()
        clock_gettime(CLOCK_MONOTONIC, &before)
        #expect(try poller.wait(timeoutMilliseconds: 50).isEmpty)
        var after = timespec()
        clock_gettime(CLOCK_MONOTONIC, &after)
        let elapsed = (after.tv_sec - before.tv_sec) * 1000 + (after.tv_nsec - before.tv_nsec) / 1_000_000
        #expect(elapsed >= 45)
    }

    @Test func hangUpCountsAsReady() throws {
        let ends = try makePipe()
        defer { close(ends.read) }
        let poller = Poller()
        poller.register(ends.read)
        close(ends.write)
        #expect(try poller.wait(timeoutMilliseconds: 1000) == [ends.read])
    }

    @Test func aClosedRegisteredDescriptorIsAnError() throws {
        let ends = try makePipe()
        defer { close(ends.write) }
        let poller = Poller()
        poller.register(ends.read)
        close(ends.read)
        #expect {
            _ = try poller.wait(timeoutMilliseconds: 0)
        } throws: { error in
            (error as? LinuxShellError)?.code == .invalidDescriptor
        }
    }
}
