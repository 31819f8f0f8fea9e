/// One segment of the secondary's kernel relayed as digests of its bytes instead of the bytes
/// (``ReplicationMessage/digests(segments:)``): its headers, how many bytes it carried, and a
/// 16-byte digest of each piece of `pieceLength` bytes (the last piece may be shorter). The
/// primary compares each piece with its own bytes at the same place, so that a piece is never
/// longer than one segment its own kernel sends: it never waits for bytes its kernel cannot send
/// before the client has acknowledged the ones it waits to send.
public struct DigestedSegment: Equatable, Hashable, Sendable {
    /// The segment's IPv4 and TCP headers as a packet without payload (the IPv4 total length is
    /// the headers' length, the checksums are of the headers alone).
    public var header: [UInt8]
    public var payloadLength: UInt32
    public var pieceLength: UInt16
    /// 16 bytes a piece, in sequence order.
    public var digests: [UInt8]

    public static let digestLength = 16

    public init(header: [UInt8], payloadLength: UInt32, pieceLength: UInt16, digests: [UInt8]) {
        self.header = header
        self.payloadLength = payloadLength
        self.pieceLength = pieceLength
        self.digests = digests
    }

    /// How many pieces `payloadLength` bytes make.
    public static func pieceCount(payloadLength: UInt32, pieceLength: UInt16) -> Int {
        // In Int: a forged payload length near 2³² must not overflow (found by replication-opener).
        pieceLength == 0 ? 0 : (Int(payloadLength) + Int(pieceLength) - 1) / Int(pieceLength)
    }

    /// Whether the fields agree: a header, a payload, and one digest per piece.
    var isWellFormed: Bool {
        !header.isEmpty && header.count <= ReplicationWireFormat.maximumDigestedHeaderLength && payloadLength > 0
            && payloadLength <= UInt32(UInt16.max) && pieceLength > 0
            && digests.count
                == Self.pieceCount(payloadLength: payloadLength, pieceLength: pieceLength) * Self.digestLength
    }

    /// Bytes this entry takes in a digests body.
    var encodedLength: Int { 2 + header.count + 4 + 2 + digests.count }
}
