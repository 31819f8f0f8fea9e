/// A segment of the secondary's kernel as the secondary relays it with `--relay digests`: its
/// headers as a packet without payload, and a digest of each piece of its bytes (see
/// ``SecondaryBridge/digestedRelay(_:digester:maximumPieces:)``).
public struct DigestedRelay: Equatable, Sendable {
    public var header: [UInt8]
    public var payloadLength: Int
    public var pieceLength: Int
    public var digests: [PayloadDigest]
}
