/// The deterministic byte stream the demo server sends for `SEND n`: the same bytes on every
/// replica and in every run, so a client can check each byte it receives.
///
/// The stream is a sequence of 64-bit words, each written little-endian: word `k` (bytes
/// `8k ..< 8k+8`) is SplitMix64's output for the counter `k + 1`, that is the finalizer
///
///     z = (k + 1) &* 0x9E3779B97F4A7C15
///     z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
///     z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
///     word = z ^ (z >> 31)
///
/// so any byte can be computed from its offset alone (a client resuming at an offset needs no
/// history), and the stream has no short period that would hide reordered or repeated data.
public enum DemoByteStream {
    /// Word `index` of the stream.
    @inlinable
    public static func word(_ index: UInt64) -> UInt64 {
        var z = (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The byte at `offset` of the stream.
    @inlinable
    public static func byte(at offset: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: word(offset >> 3) >> ((offset & 7) * 8))
    }

    /// Fills `buffer` with the stream's bytes starting at `offset`.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer, from offset: UInt64) {
        var position = offset
        var index = 0
        // Up to the first word boundary byte by byte, then whole words, then the rest.
        while index < buffer.count, position & 7 != 0 {
            buffer[index] = byte(at: position)
            index += 1
            position += 1
        }
        while buffer.count - index >= 8 {
            buffer.storeBytes(of: word(position >> 3).littleEndian, toByteOffset: index, as: UInt64.self)
            index += 8
            position += 8
        }
        while index < buffer.count {
            buffer[index] = byte(at: position)
            index += 1
            position += 1
        }
    }

    /// `count` bytes of the stream starting at `offset`, as an array (for tests and clients).
    public static func bytes(from offset: UInt64, count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { fill($0, from: offset) }
        return result
    }
}
