/// The TCP checksum of a packet whose headers and payload lie apart: the headers built by
/// ``TCPPacketFields/buildHeaders(into:payloadLength:)``, the payload left in the segments it
/// came from and handed to a gathering send in order. No byte is copied to join them.
public enum GatheredChecksum {
    /// Stores the TCP checksum in `headers` (exactly the IPv4 header, then the TCP header, as
    /// `buildHeaders` wrote them for a payload of `pieces`), summing the payload where its
    /// pieces lie.
    public static func store(headers: UnsafeMutableRawBufferPointer, payload pieces: [UnsafeRawBufferPointer]) {
        let ipHeaderLength = Int(headers[0] & 0x0f) * 4
        let tcp = UnsafeMutableRawBufferPointer(rebasing: headers[ipHeaderLength...])
        let payloadLength = pieces.reduce(0) { $0 + $1.count }
        var sum = TCPSegment.pseudoHeaderSum(
            source: IPv4Address(headers.uint32(at: 12)),
            destination: IPv4Address(headers.uint32(at: 16)),
            length: tcp.count + payloadLength
        )
        let checksumField = 16
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: tcp[0..<checksumField]))
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: tcp[(checksumField + 2)...]))
        var offset = tcp.count
        for piece in pieces {
            sum.add(bytes: piece, atOffset: offset)
            offset += piece.count
        }
        tcp.setUInt16(sum.value, at: checksumField)
    }
}
