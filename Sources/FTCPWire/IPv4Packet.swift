/// A zero-copy view of an IPv4 datagram in a caller-owned buffer.
///
/// `init(validating:)` checks everything needed to read every field without
/// going out of bounds (version, IHL, total length, no fragmentation); after
/// that, accessors read the buffer directly. Setters that change a field keep
/// the header checksum correct with an incremental update (RFC 1624).
///
/// The view does not own its bytes: it is valid only while the buffer it was
/// made from is (for example inside `withUnsafeMutableBytes`).
public struct IPv4Packet {
    /// The datagram's bytes: exactly `totalLength` of them.
    public let bytes: UnsafeMutableRawBufferPointer

    /// The IP protocol number for TCP.
    public static let tcpProtocol: UInt8 = 6
    /// Length of an IPv4 header without options.
    public static let minimumHeaderLength = 20

    enum Field {
        static let versionAndIHL = 0
        static let typeOfService = 1
        static let totalLength = 2
        static let identification = 4
        static let flagsAndFragment = 6
        static let timeToLive = 8
        static let protocolNumber = 9
        static let checksum = 10
        static let source = 12
        static let destination = 16
    }

    /// Validates `buffer` as one whole IPv4 datagram.
    ///
    /// - Parameter allowTrailingBytes: accept bytes after `totalLength` (the
    ///   padding of a minimum-size Ethernet frame in a capture) and leave them
    ///   out of the view. By default the buffer must be exactly the datagram.
    public init(validating buffer: UnsafeMutableRawBufferPointer, allowTrailingBytes: Bool = false) throws(WireError) {
        guard buffer.count >= Self.minimumHeaderLength else {
            throw .truncated(layer: .ipv4Header, needed: Self.minimumHeaderLength, available: buffer.count)
        }
        let version = buffer[0] >> 4
        guard version == 4 else { throw .notIPv4(version: version) }
        let ihl = buffer[0] & 0x0F
        guard ihl >= 5 else { throw .ipHeaderLengthTooSmall(ihl: ihl) }
        let headerLength = Int(ihl) * 4
        guard buffer.count >= headerLength else {
            throw .truncated(layer: .ipv4Header, needed: headerLength, available: buffer.count)
        }
        let totalLength = Int(buffer.uint16(at: Field.totalLength))
        guard totalLength >= headerLength else {
            throw .totalLengthMismatch(totalLength: totalLength, bufferLength: buffer.count)
        }
        if totalLength > buffer.count {
            throw .truncated(layer: .ipv4Datagram, needed: totalLength, available: buffer.count)
        }
        if totalLength < buffer.count && !allowTrailingBytes {
            throw .totalLengthMismatch(totalLength: totalLength, bufferLength: buffer.count)
        }
        let flagsAndOffset = buffer.uint16(at: Field.flagsAndFragment)
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragmentOffset = Int(flagsAndOffset & 0x1FFF) * 8
        guard !moreFragments && fragmentOffset == 0 else {
            throw .fragmented(offset: fragmentOffset, moreFragments: moreFragments)
        }
        bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<totalLength])
    }

    public var version: UInt8 { bytes[0] >> 4 }
    /// Header length in 32-bit words.
    public var ihl: UInt8 { bytes[0] & 0x0F }
    /// Header length in bytes, options included.
    public var headerLength: Int { Int(ihl) * 4 }
    /// The DSCP and ECN byte.
    public var typeOfService: UInt8 { bytes[Field.typeOfService] }
    public var totalLength: Int { Int(bytes.uint16(at: Field.totalLength)) }
    public var identification: UInt16 { bytes.uint16(at: Field.identification) }
    public var dontFragment: Bool { bytes[Field.flagsAndFragment] & 0x40 != 0 }
    public var moreFragments: Bool { bytes[Field.flagsAndFragment] & 0x20 != 0 }
    /// Fragment offset in bytes.
    public var fragmentOffset: Int { Int(bytes.uint16(at: Field.flagsAndFragment) & 0x1FFF) * 8 }
    public var timeToLive: UInt8 { bytes[Field.timeToLive] }
    public var protocolNumber: UInt8 { bytes[Field.protocolNumber] }
    public var headerChecksum: UInt16 { bytes.uint16(at: Field.checksum) }
    public var source: IPv4Address { IPv4Address(bytes.uint32(at: Field.source)) }
    public var destination: IPv4Address { IPv4Address(bytes.uint32(at: Field.destination)) }

    /// IP options, if the header has any.
    public var options: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[Self.minimumHeaderLength..<headerLength])
    }

    /// The bytes after the header.
    public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength...])
    }

    /// The header checksum this header should carry.
    public func computeHeaderChecksum() -> UInt16 {
        var sum = InternetChecksum()
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<Field.checksum]))
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[(Field.checksum + 2)..<headerLength]))
        return sum.value
    }

    /// Whether the stored header checksum is correct.
    public var isHeaderChecksumValid: Bool { computeHeaderChecksum() == headerChecksum }

    /// Recomputes and stores the header checksum.
    public func updateHeaderChecksum() {
        bytes.setUInt16(computeHeaderChecksum(), at: Field.checksum)
    }

    /// Sets the source address, patching the header checksum.
    public func setSource(_ address: IPv4Address) {
        setAddress(address, at: Field.source)
    }

    /// Sets the destination address, patching the header checksum.
    public func setDestination(_ address: IPv4Address) {
        setAddress(address, at: Field.destination)
    }

    /// Sets the time to live, patching the header checksum.
    public func setTimeToLive(_ ttl: UInt8) {
        bytes.replaceBytes(
            in: Field.timeToLive..<(Field.timeToLive + 1),
            with: CollectionOfOne(ttl),
            checksumAt: Field.checksum
        )
    }

    private func setAddress(_ address: IPv4Address, at offset: Int) {
        let old = bytes.uint32(at: offset)
        bytes.setUInt32(address.value, at: offset)
        let checksum = bytes.uint16(at: Field.checksum)
        bytes.setUInt16(InternetChecksum.update(checksum, replacing: old, with: address.value), at: Field.checksum)
    }
}
