import FTCPLinux
import FTCPWire
import Testing

/// The secondary feeds its kernel only the frames the primary's kernel will also accept.
@Suite("Captured frames the secondary may believe")
struct CapturedFrameTests {
    let primary = MACAddress("02:00:00:00:00:0a")!
    let other: [UInt8] = [0x02, 0, 0, 0, 0, 0x0b]

    /// A client's data segment to the service address, checksums right.
    func segment() throws -> [UInt8] {
        try TCPPacketFields(
            source: IPv4Address("10.80.0.100")!,
            destination: IPv4Address("10.80.0.10")!,
            sourcePort: 40_000,
            destinationPort: 9999,
            sequenceNumber: SequenceNumber(1_000),
            acknowledgmentNumber: SequenceNumber(5_001),
            flags: [.ack, .psh],
            payload: Array("hello".utf8)
        ).build()
    }

    func refusal(
        of bytes: [UInt8],
        to destination: [UInt8],
        checksum: CapturedFrame.ChecksumStatus,
        primary: MACAddress?
    ) throws -> CapturedFrame.Refusal? {
        var packet = bytes
        return try packet.withUnsafeMutableBytes { buffer in
            try destination.withUnsafeBytes { mac in
                let frame = CapturedFrame(packet: buffer, destination: mac, checksum: checksum)
                return frame.refusal(of: try TCPPacket(validating: buffer), primary: primary)
            }
        }
    }

    @Test("a good segment to the primary's address is admitted, whatever the kernel knows of its checksum")
    func goodSegment() throws {
        let bytes = try segment()
        for status in [CapturedFrame.ChecksumStatus.notComputedYet, .verified, .unknown] {
            #expect(try refusal(of: bytes, to: primary.octets, checksum: status, primary: primary) == nil)
        }
    }

    @Test("a frame to another hardware address is refused once the primary's is known")
    func otherDestination() throws {
        let bytes = try segment()
        #expect(try refusal(of: bytes, to: other, checksum: .verified, primary: primary) == .notAddressedToPrimary)
        #expect(
            try refusal(of: bytes, to: MACAddress.broadcast.octets, checksum: .verified, primary: primary)
                == .notAddressedToPrimary
        )
        // Before the primary has said its address (or a primary of an earlier release).
        #expect(try refusal(of: bytes, to: other, checksum: .verified, primary: nil) == nil)
    }

    @Test("a bad TCP checksum is refused when the kernel has not verified it, and trusted when it has")
    func badTransportChecksum() throws {
        var bytes = try segment()
        bytes[bytes.count - 1] ^= 0x20  // "hellO": the checksum no longer matches
        #expect(try refusal(of: bytes, to: primary.octets, checksum: .unknown, primary: primary) == .badChecksum)
        // The device verified it, or a local stack left it to a device: the primary's kernel
        // takes it the same way, so the secondary must too.
        #expect(try refusal(of: bytes, to: primary.octets, checksum: .verified, primary: primary) == nil)
        #expect(try refusal(of: bytes, to: primary.octets, checksum: .notComputedYet, primary: primary) == nil)
    }

    @Test("a bad IPv4 header checksum is refused in every case")
    func badHeaderChecksum() throws {
        var bytes = try segment()
        bytes[10] ^= 0x01
        for status in [CapturedFrame.ChecksumStatus.notComputedYet, .verified, .unknown] {
            #expect(try refusal(of: bytes, to: primary.octets, checksum: status, primary: primary) == .badChecksum)
        }
    }
}
