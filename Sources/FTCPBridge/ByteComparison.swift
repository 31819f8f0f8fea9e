/// Comparing the two servers' bytes, eight at a time: the merge compares every byte
/// either server sends, so an element-by-element loop would dominate it.
enum ByteComparison {
    /// The index of the first byte at which `a` and `b` differ, or nil when they are equal.
    /// Arrays of different lengths differ at the end of the shorter one.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int? {
        let common = min(a.count, b.count)
        let found: Int? = a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in
                guard common > 0, let l = left.baseAddress, let r = right.baseAddress else { return nil }
                var index = 0
                while index + 8 <= common {
                    if l.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                        != r.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    {
                        break
                    }
                    index += 8
                }
                while index < common {
                    if left[index] != right[index] { return index }
                    index += 1
                }
                return nil
            }
        }
        if let found { return found }
        return a.count == b.count ? nil : common
    }

    /// How many positions hold different bytes in two runs of the same length, and the last one.
    static func differences(_ a: [UInt8], _ b: [UInt8]) -> (count: Int, last: Int) {
        precondition(a.count == b.count)
        var count = 0
        var last = 0
        for index in a.indices where a[index] != b[index] {
            count += 1
            last = index
        }
        return (count, last)
    }
}
