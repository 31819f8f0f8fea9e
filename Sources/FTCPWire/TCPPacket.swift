/// A zero-copy view of an IPv4 datagram that carries one TCP segment.
///
/// This is the unit a bridge handles: NFQUEUE and pcap hand it over, and
/// rewrites that touch both layers (addresses, which the TCP checksum covers
/// through its pseudo-header) keep both checksums correct.
public struct TCPPacket {
    public let ip: IPv4Packet
    public let tcp: TCPSegment

    /// Validates `buffer` as an IPv4 datagram carrying a well-formed TCP segment.
    public init(validating buffer: UnsafeMutableRawBufferPointer, allowTrailingBytes: Bool = false) throws(WireError) {
        let ip = try IPv4Packet(validating: buffer, allowTrailingBytes: allowTrailingBytes)
        guard ip.protocolNumber == IPv4Packet.tcpProtocol else { throw .notTCP(protocolNumber: ip.protocolNumber) }
        self.ip = ip
        tcp = try TCPSegment(validating: ip.payload)
    }

    /// The whole datagram.
    public var bytes: UnsafeMutableRawBufferPointer { ip.bytes }

    /// Whether both the IPv4 header checksum and the TCP checksum are correct.
    public var isChecksumValid: Bool {
        ip.isHeaderChecksumValid && tcp.isChecksumValid(source: ip.source, destination: ip.destination)
    }

    /// Recomputes both checksums from scratch.
    public func updateChecksums() {
        ip.updateHeaderChecksum()
        tcp.updateChecksum(source: ip.source, destination: ip.destination)
    }

    /// Sets the source address; patches both checksums incrementally.
    public func setSource(_ address: IPv4Address) {
        let old = ip.source
        ip.setSource(address)
        tcp.adjustChecksum(forAddressChangeFrom: old, to: address)
    }

    /// Sets the destination address; patches both checksums incrementally.
    public func setDestination(_ address: IPv4Address) {
        let old = ip.destination
        ip.setDestination(address)
        tcp.adjustChecksum(forAddressChangeFrom: old, to: address)
    }
}
