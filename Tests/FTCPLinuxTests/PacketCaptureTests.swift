import FTCPLinux
import FTCPWire
import Glibc
import Testing

/// Raw IPv4 sending and the packet-socket capture across a veth pair between two network namespaces.
/// Needs root; skipped otherwise.
@Suite(.serialized, .enabled(if: NetworkNamespacePair.isAvailable, "needs root and the ip tool"))
final class PacketCaptureTests {
    let namespaces: NetworkNamespacePair
    let addressA = IPv4Address(NetworkNamespacePair.addressA)!
    let addressB = IPv4Address(NetworkNamespacePair.addressB)!

    init() throws {
        namespaces = try NetworkNamespacePair()
    }

    private func synPacket(destinationPort: UInt16, payload: [UInt8] = [], identification: UInt16 = 0x1234) throws
        -> [UInt8]
    {
        let fields = TCPPacketFields(
            source: addressA,
            destination: addressB,
            sourcePort: 40_000,
            destinationPort: destinationPort,
            sequenceNumber: SequenceNumber(0x0102_0304),
            acknowledgmentNumber: SequenceNumber(0),
            flags: [.syn],
            options: [.maximumSegmentSize(1460)],
            payload: payload,
            identification: identification
        )
        var bytes = [UInt8](repeating: 0, count: fields.totalLength)
        let length = try bytes.withUnsafeMutableBytes { try fields.build(into: $0) }
        return Array(bytes[0..<length])
    }

    /// Dispatches until `want` packets arrived or `milliseconds` passed; returns the copies.
    private func collect(_ capture: PacketCapture, want: Int, milliseconds: Int32 = 2000) throws -> [[UInt8]] {
        let poller = Poller()
        poller.register(capture.fileDescriptor)
        var packets: [[UInt8]] = []
        var waited: Int32 = 0
        while packets.count < want, waited < milliseconds {
            _ = try poller.wait(timeoutMilliseconds: 50)
            waited += 50
            _ = try capture.dispatch(maxPackets: 64) { packets.append(Array($0.packet)) }
        }
        return packets
    }

    /// The bytes that matter: all but the TTL and the header checksum, which the kernel may set.
    private func comparable(_ packet: [UInt8]) -> [UInt8] {
        var copy = packet
        if copy.count >= 12 { copy[8] = 0; copy[10] = 0; copy[11] = 0 }
        return copy
    }

    @Test func rawPacketArrivesAsSentAndTheFilterExcludesOtherPorts() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port 7777")
        }
        let arpToo = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "arp or tcp dst port 7777")
        }
        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) {
            try RawIPv4Socket(mark: 0x77, sendBufferBytes: 1 << 20)
        }
        #expect(socket.mark == 0x77)

        let other = try synPacket(destinationPort: 8888)
        let wanted = try synPacket(destinationPort: 7777, payload: Array("payload".utf8))
        try socket.send(other)
        try wanted.withUnsafeBytes { try socket.send($0) }

        let packets = try collect(capture, want: 1)
        #expect(packets.count == 1)
        #expect(packets.first.map(comparable) == comparable(wanted))
        // Nothing else arrives: the packet to port 8888 was filtered out.
        #expect(try collect(capture, want: 1, milliseconds: 200).isEmpty)

        // The second capture saw the ARP exchange before the first packet, and skipped it.
        let both = try collect(arpToo, want: 1)
        #expect(both.map(comparable) == [comparable(wanted)])
        let statistics = try arpToo.statistics
        #expect(statistics.nonIPv4 >= 1)
        #expect(statistics.delivered == 1)
        #expect(statistics.truncated == 0)
        #expect(statistics.received >= 2)

        capture.close()
        capture.close()
        #expect(capture.fileDescriptor == -1)
        #expect(throws: LinuxShellError.self) { _ = try capture.dispatch(maxPackets: 1) { _ in } }
    }

    /// An 802.1Q-tagged frame (VLAN 5), written onto the veth with a packet socket because this
    /// kernel may lack VLAN devices: the kernel moves the tag out of the frame before the filter
    /// runs, and the capture hands over the IPv4 packet.
    @Test func taggedFramesAreUnwrapped() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port 7783")
        }
        let packet = try synPacket(destinationPort: 7783, payload: Array("tagged".utf8))
        let frame: [UInt8] =
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x00, 0x05, 0x08, 0x00]
            + packet
        try namespaces.inside(NetworkNamespacePair.namespaceA) {
            let descriptor = socket(AF_PACKET, SocketType.raw, 0)
            try #require(descriptor >= 0)
            defer { close(descriptor) }
            let index = if_nametoindex(NetworkNamespacePair.interfaceA)
            try #require(index > 0)
            // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
            var address = [UInt8](repeating: 0, count: 20)
            address.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
                raw.storeBytes(of: UInt16(0x8100).bigEndian, toByteOffset: 2, as: UInt16.self)
                raw.storeBytes(of: Int32(index), toByteOffset: 4, as: Int32.self)
                raw[11] = 6
            }
            let sent = frame.withUnsafeBytes { bytes in
                address.withUnsafeBytes { raw in
                    sendto(
                        descriptor,
                        bytes.baseAddress,
                        bytes.count,
                        0,
                        raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                        socklen_t(raw.count)
                    )
                }
            }
            try #require(sent == frame.count, "sendto(AF_PACKET) failed: errno \(errno)")
        }
        let packets = try collect(capture, want: 1)
        #expect(packets == [packet])
    }

    /// The injection path's gathering send: the headers in one buffer, the payload in pieces
    /// where they lie; the wire carries one packet, the pieces in order.
    @Test func aPacketSentInPiecesArrivesWhole() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port 7791")
        }
        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) { try RawIPv4Socket() }
        let payload = (0..<301).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let packet = try synPacket(destinationPort: 7791, payload: payload)
        let headers = packet.count - payload.count
        try packet.withUnsafeBytes { bytes in
            try socket.send(
                headers: UnsafeRawBufferPointer(rebasing: bytes[0..<headers]),
                payload: [
                    UnsafeRawBufferPointer(rebasing: bytes[headers..<(headers + 101)]),
                    UnsafeRawBufferPointer(rebasing: bytes[(headers + 101)..<(headers + 101)]),
                    UnsafeRawBufferPointer(rebasing: bytes[(headers + 101)...]),
                ]
            )
        }
        #expect(try collect(capture, want: 1).map(comparable) == [comparable(packet)])
    }

    @Test func theCallerMayRewriteTheBufferInPlace() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port 7778")
        }
        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) { try RawIPv4Socket() }
        let packet = try synPacket(destinationPort: 7778)
        try socket.send(packet)
        try socket.send(packet)
        var seen: [[UInt8]] = []
        let poller = Poller()
        poller.register(capture.fileDescriptor)
        while seen.count < 2, try !poller.wait(timeoutMilliseconds: 2000).isEmpty {
            _ = try capture.dispatch(maxPackets: 0) { frame in
                seen.append(Array(frame.packet))
                frame.packet.initializeMemory(as: UInt8.self, repeating: 0xEE)  // must not leak into the next packet
            }
        }
        #expect(seen.map(comparable) == [comparable(packet), comparable(packet)])
    }

    /// Each frame comes with its destination hardware address (here the receiving interface's,
    /// which the sender learnt by ARP) and, from a raw socket that computed its own checksums,
    /// a checksum status the secondary can act on.
    @Test func framesCarryTheirDestinationAndChecksumStatus() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port 7784")
        }
        let own = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try ARPSocket(interface: NetworkNamespacePair.interfaceB).hardwareAddress
        }
        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) { try RawIPv4Socket() }
        try socket.send(try synPacket(destinationPort: 7784, payload: [1, 2]))
        let poller = Poller()
        poller.register(capture.fileDescriptor)
        var seen: [(destination: [UInt8], checksum: CapturedFrame.ChecksumStatus, refusal: CapturedFrame.Refusal?)] = []
        for _ in 0..<40 where seen.isEmpty {
            _ = try poller.wait(timeoutMilliseconds: 50)
            _ = try capture.dispatch(maxPackets: 0) { frame in
                let view = try? TCPPacket(validating: frame.packet)
                seen.append(
                    (Array(frame.destination), frame.checksum, view.flatMap { frame.refusal(of: $0, primary: own) })
                )
            }
        }
        try #require(seen.count == 1)
        #expect(seen[0].destination == own.octets)
        #expect(seen[0].checksum != .notComputedYet, "a raw socket's packet carries its checksum")
        #expect(seen[0].refusal == nil)
    }

    @Test func truncatedFramesAreCountedAndNeverHandedOver() throws {
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(
                interface: NetworkNamespacePair.interfaceB,
                filter: "tcp dst port 7779",
                frameBytes: 200
            )
        }
        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) { try RawIPv4Socket() }
        try socket.send(try synPacket(destinationPort: 7779, payload: [UInt8](repeating: 0xAB, count: 1000)))
        try socket.send(try synPacket(destinationPort: 7779, payload: [1, 2, 3]))
        let packets = try collect(capture, want: 1)
        #expect(packets.count == 1)
        #expect(packets.first?.count == 20 + 24 + 3)
        let statistics = try capture.statistics
        #expect(statistics.truncated == 1)
        #expect(statistics.delivered == 1)
    }

    /// A TCP transfer over the veth: the receiving side's capture sees the sender's GSO
    /// super-frames, larger than the MTU, which must be delivered whole, their checksums not yet
    /// computed; the captured payloads rebuild the stream.
    @Test func superFramesAreDeliveredWhole() throws {
        let port: UInt16 = 7780
        let capture = try namespaces.inside(NetworkNamespacePair.namespaceB) {
            try PacketCapture(interface: NetworkNamespacePair.interfaceB, filter: "tcp dst port \(port)")
        }
        let listener = try namespaces.inside(NetworkNamespacePair.namespaceB) { try tcpSocket() }
        defer { close(listener) }
        var local = socketAddress(addressB, port)
        try #require(
            withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            } == 0
        )
        try #require(listen(listener, 4) == 0)
        let client = try namespaces.inside(NetworkNamespacePair.namespaceA) { try tcpSocket() }
        defer { close(client) }
        _ = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }

        let total = 4 << 20
        let data = (0..<total).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        var sent = 0
        var receivedCount = 0
        var server: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var initialSequence: UInt32?
        var rebuilt = [UInt8](repeating: 0, count: total)
        var covered = 0
        var largest = 0
        var checksumsComputed = 0
        func drainCapture() throws {
            _ = try capture.dispatch(maxPackets: 0) { frame in
                let packet = frame.packet
                if frame.checksum != .notComputedYet { checksumsComputed += 1 }
                largest = max(largest, packet.count)
                let headerLength = Int(packet[0] & 0x0f) * 4
                let tcp = UnsafeMutableRawBufferPointer(rebasing: packet[headerLength...])
                let sequence = UInt32(tcp[4]) << 24 | UInt32(tcp[5]) << 16 | UInt32(tcp[6]) << 8 | UInt32(tcp[7])
                if tcp[13] & 0x02 != 0 { initialSequence = sequence &+ 1; return }
                guard let initial = initialSequence else { return }
                let payloadStart = Int(tcp[12] >> 4) * 4
                let payload = tcp[payloadStart...]
                let offset = Int(sequence &- initial)
                guard !payload.isEmpty, offset + payload.count <= total else { return }
                for (index, byte) in payload.enumerated() { rebuilt[offset + index] = byte }
                covered += payload.count
            }
        }
        let start = time(nil)
        while receivedCount < total {
            try #require(time(nil) - start < 30, "transfer stalled at \(receivedCount) of \(total) bytes")
            if server < 0 {
                server = accept(listener, nil, nil)
                if server >= 0 { _ = fcntl(server, F_SETFL, O_NONBLOCK) }
            }
            if sent < total {
                let count = data.withUnsafeBytes {
                    send(client, $0.baseAddress! + sent, total - sent, Int32(MSG_NOSIGNAL))
                }
                if count > 0 { sent += count }
            }
            if server >= 0 {
                let count = buffer.withUnsafeMutableBytes { recv(server, $0.baseAddress, $0.count, 0) }
                if count > 0 { receivedCount += count }
            }
            try drainCapture()
        }
        if server >= 0 { close(server) }
        for _ in 0..<20 where covered < total {
            usleep(20_000)
            try drainCapture()
        }
        let statistics = try capture.statistics
        #expect(statistics.truncated == 0)
        #expect(statistics.dropped == 0)
        #expect(largest > 1500, "no frame larger than the MTU was captured (is TSO off on the veth?)")
        // A local stack's segments cross a veth with the checksum left to a device: the kernel says so.
        #expect(checksumsComputed == 0)
        #expect(covered >= total)
        let matches = rebuilt == data
        #expect(matches, "the stream rebuilt from captured payloads differs from what was sent")
    }

    @Test func errorsSayWhatToCheck() throws {
        let missing = #expect(throws: LinuxShellError.self) {
            _ = try PacketCapture(interface: "ftcp-nonexistent0", filter: "tcp")
        }
        #expect(missing?.code == .noSuchDevice)
        #expect(missing?.description.contains("right network namespace") == true)

        let any = #expect(throws: LinuxShellError.self) {
            _ = try PacketCapture(interface: "any", filter: "tcp")
        }
        #expect(any?.code == .noSuchDevice)

        let badFilter = #expect(throws: LinuxShellError.self) {
            _ = try PacketCapture(interface: "lo", filter: "tcp port banana")
        }
        #expect(badFilter?.code == .invalidFilter)
        #expect(badFilter?.description.contains("tcp port banana") == true)

        let socket = try namespaces.inside(NetworkNamespacePair.namespaceA) { try RawIPv4Socket() }
        let notIPv4 = #expect(throws: LinuxShellError.self) { try socket.send([0x60, 0, 0, 0]) }
        #expect(notIPv4?.code == .malformedPacket)

        // A 3000-byte packet with DF set cannot leave through a 1500-byte MTU.
        let tooLarge = #expect(throws: LinuxShellError.self) {
            try socket.send(try synPacket(destinationPort: 7781, payload: [UInt8](repeating: 0, count: 3000)))
        }
        #expect(tooLarge?.code == .packetTooLarge)
        #expect(tooLarge?.description.contains("MSS") == true)
    }

    private func tcpSocket() throws -> Int32 {
        let descriptor = socket(AF_INET, SocketType.stream | SocketType.nonblocking, 0)
        try #require(descriptor >= 0)
        return descriptor
    }
}

private func socketAddress(_ address: IPv4Address, _ port: UInt16) -> sockaddr_in {
    var result = sockaddr_in()
    result.sin_family = sa_family_t(AF_INET)
    result.sin_port = port.bigEndian
    result.sin_addr.s_addr = address.value.bigEndian
    return result
}
