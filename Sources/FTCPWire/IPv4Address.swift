/// An IPv4 address, stored in host byte order.
public struct IPv4Address: Hashable, Sendable {
    /// The address as a number, most significant byte first on the wire.
    public var value: UInt32

    @inlinable
    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad notation (`"10.80.0.1"`); `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt8(part)
            else { return nil }
            result = result << 8 | UInt32(octet)
        }
        value = result
    }

    /// The four bytes in network order.
    public var octets: [UInt8] {
        [
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
        ]
    }
}

extension IPv4Address: CustomStringConvertible {
    public var description: String { octets.map(String.init).joined(separator: ".") }
}
