import FTCPWire
import Glibc

/// A packet socket (`AF_PACKET`, `SOCK_RAW`) with virtio-net headers (`PACKET_VNET_HDR`) on one
/// Ethernet interface: sends a TCP/IPv4 super-segment of up to 64 KiB as one frame, which the
/// kernel (or the card) cuts into segments of a given payload size on the way out (generic
/// segmentation offload). How the primary bridge hands its kernel one packet for a whole run of
/// merged segments instead of one per 1,448 bytes.
///
/// The frame bypasses the IP layer (no routing, no netfilter on this host), so the caller names
/// the next hop's hardware address; the queueing discipline of the interface still applies.
/// The TCP checksum is left to the offload (`VIRTIO_NET_HDR_F_NEEDS_CSUM`). Not thread-safe: use
/// one instance from one thread. Needs CAP_NET_RAW. Sends only; it never receives.
public final class SegmentationOffloadSocket {
    /// The socket's file descriptor, -1 once closed.
    public private(set) var fileDescriptor: Int32
    /// The interface frames leave from, e.g. `"eth0"`.
    public let interface: String
    /// The interface's index.
    public let interfaceIndex: Int32
    /// The interface's own hardware address: every frame's source.
    public let hardwareAddress: MACAddress

    /// `SOL_PACKET` / `PACKET_VNET_HDR` from <linux/if_packet.h>.
    private static let solPacket: Int32 = 263
    private static let packetVnetHeader: Int32 = 15
    /// `struct virtio_net_hdr` length, and the Ethernet header's.
    static let virtioHeaderLength = 10
    static let ethernetHeaderLength = 14
    private static let etherTypeIPv4: UInt16 = 0x0800
    /// `sizeof(struct sockaddr_ll)`.
    private static let linkAddressLength = 20

    private var frameHeader = [UInt8](repeating: 0, count: virtioHeaderLength + ethernetHeaderLength)

    /// Opens the socket on `interface`.
    ///
    /// Throws ``LinuxShellError/Code/noSuchDevice`` for an unknown interface,
    /// ``LinuxShellError/Code/unsupportedLinkType`` for a non-Ethernet one, and
    /// ``LinuxShellError/Code/permissionDenied`` without CAP_NET_RAW.
    public init(interface: String, sendBufferBytes: Int? = nil) throws(LinuxShellError) {
        let operation = "open segmentation offload socket on \(interface)"
        try EthernetInterface.checkName(interface, operation: operation)
        let descriptor: Int32
        let type = SocketType.raw | SocketType.closeOnExec
        do {
            // Protocol 0: the socket receives nothing.
            descriptor = try systemCall("socket(AF_PACKET, SOCK_RAW, 0)") { socket(AF_PACKET, type, 0) }
        } catch {
            throw .classifying(error, operation: operation)
        }
        let found: EthernetInterface
        do {
            found = try EthernetInterface.lookUp(
                interface,
                through: descriptor,
                operation: operation,
                purpose: "segmentation offload"
            )
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        do {
            try setIntegerSocketOption(
                descriptor,
                level: Self.solPacket,
                option: Self.packetVnetHeader,
                value: 1,
                name: "setsockopt(PACKET_VNET_HDR)"
            )
            if let sendBufferBytes {
                try setSocketBufferSize(descriptor, receive: false, bytes: sendBufferBytes)
            }
        } catch {
            Glibc.close(descriptor)
            throw .classifying(error, operation: operation)
        }
        fileDescriptor = descriptor
        self.interface = interface
        interfaceIndex = found.index
        hardwareAddress = found.hardwareAddress
    }

    deinit { close() }

    /// Closes the socket; closing again does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Sends the TCP/IPv4 packet in `packet` (IP header first, built with its checksums) to the
    /// neighbour `nextHop`, to be cut into pieces of `segmentSize` payload bytes. The TCP checksum
    /// field is overwritten with the pseudo-header sum the offload starts from.
    ///
    /// Throws ``LinuxShellError/Code/malformedPacket`` when the bytes are not a TCP/IPv4 packet
    /// whose total length matches, and the classified system call error when the kernel refuses
    /// the frame (``LinuxShellError/Code/noBufferSpace``, ``LinuxShellError/Code/interfaceDown``, …).
    public func send(_ packet: UnsafeMutableRawBufferPointer, segmentSize: Int, to nextHop: MACAddress)
        throws(LinuxShellError)
    {
        try send(headers: packet, payload: [], segmentSize: segmentSize, to: nextHop)
    }

    /// Sends a super-segment whose headers (the IPv4 header, its checksum set, then the TCP
    /// header) are in `headers` and whose payload is `pieces`, in order, wherever they lie: the
    /// kernel gathers them into the frame, so no byte is copied in this process to join them.
    /// The IPv4 total length counts the pieces; the TCP checksum field is overwritten as
    /// ``send(_:segmentSize:to:)`` says. At most 1,000 pieces.
    public func send(
        headers packet: UnsafeMutableRawBufferPointer,
        payload pieces: [UnsafeRawBufferPointer],
        segmentSize: Int,
        to nextHop: MACAddress
    ) throws(LinuxShellError) {
        let payloadLength = pieces.reduce(0) { $0 + $1.count }
        let operation = "send super-segment of \(packet.count + payloadLength) bytes on \(interface)"
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: operation) }
        guard packet.count >= 40, packet[0] >> 4 == 4, packet[9] == 6 else {
            throw LinuxShellError(.malformedPacket, operation: operation, detail: "not a TCP/IPv4 packet")
        }
        let ipHeaderLength = Int(packet[0] & 0x0f) * 4
        let totalLength = Int(packet[2]) << 8 | Int(packet[3])
        guard ipHeaderLength >= 20, totalLength == packet.count + payloadLength, packet.count >= ipHeaderLength + 20,
            pieces.count <= 1_000
        else {
            throw LinuxShellError(
                .malformedPacket,
                operation: operation,
                detail: "IP header length \(ipHeaderLength), total length \(totalLength)"
            )
        }
        let tcpHeaderLength = Int(packet[ipHeaderLength + 12] >> 4) * 4
        guard tcpHeaderLength >= 20, ipHeaderLength + tcpHeaderLength <= packet.count,
            (1...Int(UInt16.max)).contains(segmentSize)
        else {
            throw LinuxShellError(
                .malformedPacket,
                operation: operation,
                detail: "TCP header length \(tcpHeaderLength), segment size \(segmentSize)"
            )
        }
        // The offload sums the TCP header and payload onto what the checksum field holds: the
        // pseudo-header sum, folded, not complemented.
        var pseudo = InternetChecksum()
        pseudo.add(bytes: UnsafeRawBufferPointer(rebasing: packet[12..<20]))
        pseudo.add(UInt16(6))
        pseudo.add(UInt16(totalLength - ipHeaderLength))
        let partial = ~pseudo.value
        packet[ipHeaderLength + 16] = UInt8(partial >> 8)
        packet[ipHeaderLength + 17] = UInt8(partial & 0xff)

        let headerLength = Self.ethernetHeaderLength + ipHeaderLength + tcpHeaderLength
        frameHeader.withUnsafeMutableBytes { header in
            // struct virtio_net_hdr, in the host's byte order: NEEDS_CSUM, GSO_TCPV4.
            header[0] = 1
            header[1] = 1
            header.storeBytes(of: UInt16(headerLength), toByteOffset: 2, as: UInt16.self)
            header.storeBytes(of: UInt16(segmentSize), toByteOffset: 4, as: UInt16.self)
            header.storeBytes(of: UInt16(Self.ethernetHeaderLength + ipHeaderLength), toByteOffset: 6, as: UInt16.self)
            header.storeBytes(of: UInt16(16), toByteOffset: 8, as: UInt16.self)
            // Ethernet: destination, source, EtherType.
            for index in 0..<6 {
                header[10 + index] = nextHop.octets[index]
                header[16 + index] = hardwareAddress.octets[index]
            }
            header.storeBytes(of: Self.etherTypeIPv4.bigEndian, toByteOffset: 22, as: UInt16.self)
        }
        var link = [UInt8](repeating: 0, count: Self.linkAddressLength)
        link.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: Self.etherTypeIPv4.bigEndian, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: interfaceIndex, toByteOffset: 4, as: Int32.self)
            raw[11] = 6
            for index in 0..<6 { raw[12 + index] = nextHop.octets[index] }
        }
        let descriptor = fileDescriptor
        let expected = frameHeader.count + totalLength
        let sent: Int
        do {
            sent = try systemCall("sendmsg(AF_PACKET, \(interface))") {
                frameHeader.withUnsafeMutableBytes { header in
                    link.withUnsafeMutableBytes { address in
                        let (frame, ip) = (UnsafeRawBufferPointer(header), UnsafeRawBufferPointer(packet))
                        return withGatheredVectors(frame, ip, pieces: pieces) { vectors in
                            var message = msghdr()
                            message.msg_name = address.baseAddress
                            message.msg_namelen = socklen_t(Self.linkAddressLength)
                            message.msg_iov = vectors.baseAddress
                            message.msg_iovlen = vectors.count
                            return sendmsg(descriptor, &message, 0)
                        }
                    }
                }
            }
        } catch {
            throw .classifying(error, operation: operation)
        }
        if sent != expected {
            throw LinuxShellError(
                .systemCall,
                operation: operation,
                detail: "the kernel took \(sent) of \(expected) bytes"
            )
        }
    }
}
