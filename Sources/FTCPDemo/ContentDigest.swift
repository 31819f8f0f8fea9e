import Crypto

/// SHA-256 of a byte stream fed in pieces, as the demo protocol and the lab
/// tools report it (lower-case hex). A thin wrapper over swift-crypto, so no
/// one in this project maintains a hash function of their own.
public struct ContentDigest {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let array = Array(bytes)
        array.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }

    /// The 32-byte digest; the value is spent afterwards (start a new one).
    public mutating func finalize() -> [UInt8] {
        Array(hasher.finalize())
    }

    /// The digest as lower-case hex; the value is spent afterwards.
    public mutating func finalizeHex() -> String {
        Self.hex(finalize())
    }

    public static func hexDigest<Bytes: Sequence>(of bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var digest = ContentDigest()
        digest.update(bytes)
        return hex(digest.finalize())
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
