/// A digest of the bytes one segment of the secondary's kernel carried, which the secondary
/// relays in place of the bytes (`--relay digests`): the primary sends its own bytes and needs
/// the secondary's only to compare, so a digest of them is enough to check that both servers
/// produced the same ones.
///
/// 128 bits. The daemons compute it as the first 16 bytes of SHA-256 (``PayloadDigester``): two
/// different byte runs of the same length get the same digest with probability 2⁻¹²⁸, and the
/// inputs are what two copies of the same application wrote, not chosen against the digest by
/// anyone who could not simply make the applications differ. At a million differing runs a
/// second that is one missed divergence in about 10²⁵ years.
public struct PayloadDigest: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public var description: String {
        String(high, radix: 16).leftPadded(to: 16) + String(low, radix: 16).leftPadded(to: 16)
    }
}

/// Computes a ``PayloadDigest`` of bytes. The bridge cores take it from their caller (the
/// daemons give SHA-256), so they stay free of a cryptography library.
public typealias PayloadDigester = @Sendable (UnsafeRawBufferPointer) -> PayloadDigest

extension PayloadDigest {
    /// A digester without cryptographic strength (two 64-bit FNV-1a hashes with different
    /// offsets), for tests and fuzzing, where no divergence is hidden on purpose.
    public static let fnv: PayloadDigester = { bytes in
        var first: UInt64 = 0xcbf2_9ce4_8422_2325
        var second: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in bytes {
            first = (first ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            second ^= second >> 29
        }
        return PayloadDigest(high: first, low: second ^ UInt64(bytes.count))
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
