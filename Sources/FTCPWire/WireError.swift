/// Why a buffer is not a packet the wire layer can work with.
///
/// Every malformed input becomes one of these values; nothing in `FTCPWire`
/// traps or reads out of bounds on received bytes. Each case carries the
/// numbers that make the failure explainable in a log line.
public enum WireError: Error, Equatable, Sendable {
    /// The buffer ends before the named layer's header or declared length does.
    case truncated(layer: Layer, needed: Int, available: Int)
    /// The IP version nibble is not 4.
    case notIPv4(version: UInt8)
    /// The IPv4 header length field (IHL) is below the minimum of 5 words.
    case ipHeaderLengthTooSmall(ihl: UInt8)
    /// The IPv4 total length disagrees with the buffer it came in.
    case totalLengthMismatch(totalLength: Int, bufferLength: Int)
    /// The datagram is a fragment; bridges only handle whole datagrams.
    case fragmented(offset: Int, moreFragments: Bool)
    /// The IPv4 payload is not TCP.
    case notTCP(protocolNumber: UInt8)
    /// The TCP data offset is below the minimum of 5 words.
    case dataOffsetTooSmall(dataOffset: UInt8)
    /// The TCP data offset points past the end of the segment.
    case dataOffsetBeyondSegment(headerLength: Int, segmentLength: Int)
    /// A TCP option's length byte, or its declared length, runs past the header.
    case optionOverrun(kind: UInt8, offset: Int)
    /// A TCP option declares a length that is impossible (0 or 1) or wrong for its kind.
    case invalidOptionLength(kind: UInt8, length: UInt8, offset: Int)
    /// A value does not fit the field it is written to (for example an over-long option list).
    case fieldOverflow(field: String, value: Int, limit: Int)

    /// The protocol layer a truncation was found in.
    public enum Layer: String, Sendable {
        case ipv4Header = "IPv4 header"
        case ipv4Datagram = "IPv4 datagram"
        case tcpHeader = "TCP header"
        case buffer = "output buffer"
    }
}

extension WireError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .truncated(layer, needed, available):
            return "truncated \(layer.rawValue): need \(needed) bytes, have \(available)"
        case let .notIPv4(version):
            return "not an IPv4 packet (version \(version))"
        case let .ipHeaderLengthTooSmall(ihl):
            return "IPv4 header length \(ihl) words is below the minimum of 5"
        case let .totalLengthMismatch(total, buffer):
            return "IPv4 total length \(total) disagrees with the \(buffer)-byte buffer"
        case let .fragmented(offset, more):
            return "IPv4 fragment (offset \(offset), more fragments: \(more)); only whole datagrams are handled"
        case let .notTCP(proto):
            return "IPv4 payload is protocol \(proto), not TCP (6)"
        case let .dataOffsetTooSmall(offset):
            return "TCP data offset \(offset) words is below the minimum of 5"
        case let .dataOffsetBeyondSegment(header, segment):
            return "TCP header length \(header) exceeds the \(segment)-byte segment"
        case let .optionOverrun(kind, offset):
            return "TCP option kind \(kind) at header offset \(offset) runs past the end of the header"
        case let .invalidOptionLength(kind, length, offset):
            return "TCP option kind \(kind) at header offset \(offset) has invalid length \(length)"
        case let .fieldOverflow(field, value, limit):
            return "\(field) value \(value) exceeds its limit of \(limit)"
        }
    }
}
