/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
///
/// `InternetChecksum` accumulates a one's-complement sum over any number of
/// byte ranges (a pseudo-header, then a segment) and yields the checksum to
/// store. The static `update` functions patch a stored checksum after a field
/// changed, without touching the rest of the packet.
public struct InternetChecksum: Sendable {
    /// Running sum of 16-bit words in network order, not yet folded.
    @usableFromInline var sum: UInt64 = 0

    @inlinable
    public init() {}

    /// Adds one 16-bit word (network order value).
    @inlinable
    public mutating func add(_ word: UInt16) { sum &+= UInt64(word) }

    /// Adds a 32-bit value as two 16-bit words.
    @inlinable
    public mutating func add(_ word: UInt32) {
        sum &+= UInt64(word >> 16) &+ UInt64(word & 0xFFFF)
    }

    /// Adds bytes that start at an even offset of the checksummed data. An odd
    /// final byte is padded with zero, so only the last range may be odd-sized.
    @inlinable
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var index = 0
        // Sum native-order 32-bit loads; byte order is fixed up when folding
        // (RFC 1071 §2(B): the sum is byte-order independent up to a swap).
        var native: UInt64 = 0
        while index + 4 <= count {
            native &+= UInt64(base.loadUnaligned(fromByteOffset: index, as: UInt32.self))
            index += 4
        }
        if index + 2 <= count {
            native &+= UInt64(base.loadUnaligned(fromByteOffset: index, as: UInt16.self))
            index += 2
        }
        var folded = Self.fold(native)
        #if _endian(little)
            folded = folded.byteSwapped
        #endif
        sum &+= UInt64(folded)
        if index < count {
            sum &+= UInt64(bytes[index]) << 8
        }
    }

    /// Adds bytes that start at `offset` of the checksummed data, even or odd: a range at an odd
    /// offset adds its own sum byte-swapped (RFC 1071 §2(B): the sum is the same, up to a swap,
    /// in either byte order), so the pieces of a payload can be summed where they lie, without
    /// being joined first. Each range must start where the one before it ended.
    @inlinable
    public mutating func add(bytes: UnsafeRawBufferPointer, atOffset offset: Int) {
        guard offset & 1 == 1 else { return add(bytes: bytes) }
        var piece = InternetChecksum()
        piece.add(bytes: bytes)
        sum &+= UInt64(Self.fold(piece.sum).byteSwapped)
    }

    /// Adds an array of bytes (see `add(bytes:)`).
    @inlinable
    public mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { add(bytes: $0) }
    }

    /// The checksum to store: the complement of the folded sum.
    @inlinable
    public var value: UInt16 { ~Self.fold(sum) }

    @inlinable
    static func fold(_ value: UInt64) -> UInt16 {
        var s = value
        while s > 0xFFFF { s = (s & 0xFFFF) &+ (s >> 16) }
        return UInt16(s)
    }

    /// RFC 1624 eqn. 3: the checksum after one 16-bit word changes from `old` to `new`.
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        let s = UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new)
        return ~fold(s)
    }

    /// RFC 1624 eqn. 3 for a 32-bit field (two words).
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt32, with new: UInt32) -> UInt16 {
        let s =
            UInt64(~checksum)
            &+ UInt64(~UInt16(old >> 16)) &+ UInt64(~UInt16(truncatingIfNeeded: old))
            &+ UInt64(new >> 16) &+ UInt64(new & 0xFFFF)
        return ~fold(s)
    }

    /// RFC 1624 eqn. 3 over a span of words: `oldSum` and `newSum` are the
    /// one's-complement sums of the changed words before and after the edit.
    @inlinable
    public static func update(_ checksum: UInt16, replacingSum oldSum: UInt16, withSum newSum: UInt16) -> UInt16 {
        update(checksum, replacing: oldSum, with: newSum)
    }
}

extension UnsafeMutableRawBufferPointer {
    /// One's-complement sum (folded, not complemented) of the 16-bit words that
    /// cover `range`, where words are aligned to even offsets of this buffer.
    @usableFromInline
    func wordSum(covering range: Range<Int>) -> UInt16 {
        let start = range.lowerBound & ~1
        var end = range.upperBound
        if end & 1 == 1 { end += 1 }
        var sum: UInt64 = 0
        var index = start
        while index < end {
            let high = UInt64(self[index])
            let low: UInt64 = index + 1 < count ? UInt64(self[index + 1]) : 0
            sum &+= high << 8 | low
            index += 2
        }
        return InternetChecksum.fold(sum)
    }

    /// Rewrites `range` with `newBytes` and patches the checksum stored at
    /// `checksumOffset` incrementally (RFC 1624), handling odd alignment.
    @usableFromInline
    func replaceBytes(in range: Range<Int>, with newBytes: some Collection<UInt8>, checksumAt checksumOffset: Int) {
        precondition(newBytes.count == range.count, "in-place rewrite must keep the length")
        let oldSum = wordSum(covering: range)
        var index = range.lowerBound
        for byte in newBytes {
            self[index] = byte
            index += 1
        }
        let newSum = wordSum(covering: range)
        let checksum = uint16(at: checksumOffset)
        setUInt16(InternetChecksum.update(checksum, replacingSum: oldSum, withSum: newSum), at: checksumOffset)
    }
}
