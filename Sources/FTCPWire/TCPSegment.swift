/// A zero-copy view of a TCP segment (header and payload) in a caller-owned buffer.
///
/// `init(validating:)` checks the data offset and walks every option, so all
/// accessors afterwards stay in bounds. Setters rewrite fields in place and
/// patch the checksum incrementally (RFC 1624); the pseudo-header is not
/// involved because addresses and length do not change. Address rewrites go
/// through `TCPPacket`, which sees both headers.
public struct TCPSegment {
    /// The segment's bytes: header, options and payload.
    public let bytes: UnsafeMutableRawBufferPointer

    /// Length of a TCP header without options.
    public static let minimumHeaderLength = 20
    /// Largest TCP header: data offset 15 words.
    public static let maximumHeaderLength = 60

    enum Field {
        static let sourcePort = 0
        static let destinationPort = 2
        static let sequenceNumber = 4
        static let acknowledgmentNumber = 8
        static let dataOffset = 12
        static let flags = 13
        static let window = 14
        static let checksum = 16
        static let urgentPointer = 18
    }

    /// Validates `buffer` as a whole TCP segment.
    public init(validating buffer: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard buffer.count >= Self.minimumHeaderLength else {
            throw .truncated(layer: .tcpHeader, needed: Self.minimumHeaderLength, available: buffer.count)
        }
        let dataOffset = buffer[Field.dataOffset] >> 4
        guard dataOffset >= 5 else { throw .dataOffsetTooSmall(dataOffset: dataOffset) }
        let headerLength = Int(dataOffset) * 4
        guard headerLength <= buffer.count else {
            throw .dataOffsetBeyondSegment(headerLength: headerLength, segmentLength: buffer.count)
        }
        var walker = TCPOptionWalker(header: buffer, headerLength: headerLength)
        while try walker.next() != nil {}
        bytes = buffer
    }

    public var sourcePort: UInt16 { bytes.uint16(at: Field.sourcePort) }
    public var destinationPort: UInt16 { bytes.uint16(at: Field.destinationPort) }
    public var sequenceNumber: SequenceNumber { SequenceNumber(bytes.uint32(at: Field.sequenceNumber)) }
    public var acknowledgmentNumber: SequenceNumber { SequenceNumber(bytes.uint32(at: Field.acknowledgmentNumber)) }
    /// Header length in 32-bit words.
    public var dataOffset: UInt8 { bytes[Field.dataOffset] >> 4 }
    /// Header length in bytes, options included.
    public var headerLength: Int { Int(dataOffset) * 4 }
    /// The three reserved bits and the former NS bit (low nibble of byte 12).
    public var reservedBits: UInt8 { bytes[Field.dataOffset] & 0x0F }
    public var flags: TCPFlags { TCPFlags(rawValue: bytes[Field.flags]) }
    /// The raw window field, before any window-scale shift.
    public var window: UInt16 { bytes.uint16(at: Field.window) }
    public var checksum: UInt16 { bytes.uint16(at: Field.checksum) }
    public var urgentPointer: UInt16 { bytes.uint16(at: Field.urgentPointer) }

    /// The option bytes between the fixed header and the payload.
    public var optionBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[Self.minimumHeaderLength..<headerLength])
    }

    /// The data the segment carries.
    public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength...])
    }

    public var payloadLength: Int { bytes.count - headerLength }

    /// Sequence space the segment occupies: payload bytes plus one each for SYN and FIN.
    public var sequenceLength: UInt32 {
        UInt32(payloadLength) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }

    // MARK: Options

    /// Where each option sits, in header order, End of Option List included.
    public var optionSlots: [TCPOptionSlot] {
        var slots: [TCPOptionSlot] = []
        forEachOptionSlot { slots.append($0) }
        return slots
    }

    /// Calls `body` with each option's slot, without allocating.
    public func forEachOptionSlot(_ body: (TCPOptionSlot) -> Void) {
        var walker = TCPOptionWalker(header: bytes, headerLength: headerLength)
        // The header was validated in init; a walk error here means the caller
        // corrupted the bytes behind the view's back, and iteration just stops.
        while let slot = try? walker.next() { body(slot) }
    }

    /// The decoded options, End of Option List and padding left out.
    public var options: [TCPOption] {
        var result: [TCPOption] = []
        forEachOptionSlot { slot in
            if slot.kind != TCPOption.Kind.endOfOptionList { result.append(decode(slot)) }
        }
        return result
    }

    /// Decodes the option in `slot`.
    public func decode(_ slot: TCPOptionSlot) -> TCPOption {
        let at = slot.offset
        switch slot.kind {
        case TCPOption.Kind.endOfOptionList: return .endOfOptionList
        case TCPOption.Kind.noOperation: return .noOperation
        case TCPOption.Kind.maximumSegmentSize: return .maximumSegmentSize(bytes.uint16(at: at + 2))
        case TCPOption.Kind.windowScale: return .windowScale(bytes[at + 2])
        case TCPOption.Kind.sackPermitted: return .sackPermitted
        case TCPOption.Kind.timestamps:
            return .timestamps(value: bytes.uint32(at: at + 2), echoReply: bytes.uint32(at: at + 6))
        case TCPOption.Kind.sack:
            let blocks = stride(from: at + 2, to: at + slot.length, by: 8).map {
                SACKBlock(left: SequenceNumber(bytes.uint32(at: $0)), right: SequenceNumber(bytes.uint32(at: $0 + 4)))
            }
            return .sack(blocks)
        default:
            return .unknown(kind: slot.kind, data: Array(bytes[(at + 2)..<(at + slot.length)]))
        }
    }

    /// The first slot of the given kind, if any.
    public func firstSlot(ofKind kind: UInt8) -> TCPOptionSlot? {
        var found: TCPOptionSlot?
        forEachOptionSlot { slot in
            if found == nil && slot.kind == kind { found = slot }
        }
        return found
    }

    public var maximumSegmentSize: UInt16? {
        firstSlot(ofKind: TCPOption.Kind.maximumSegmentSize).map { bytes.uint16(at: $0.offset + 2) }
    }

    public var windowScale: UInt8? {
        firstSlot(ofKind: TCPOption.Kind.windowScale).map { bytes[$0.offset + 2] }
    }

    public var isSACKPermitted: Bool { firstSlot(ofKind: TCPOption.Kind.sackPermitted) != nil }

    /// TSval and TSecr, if the segment has a timestamps option.
    public var timestamps: (value: UInt32, echoReply: UInt32)? {
        firstSlot(ofKind: TCPOption.Kind.timestamps).map {
            (bytes.uint32(at: $0.offset + 2), bytes.uint32(at: $0.offset + 6))
        }
    }

    public var sackBlocks: [SACKBlock] {
        guard let slot = firstSlot(ofKind: TCPOption.Kind.sack), case let .sack(blocks) = decode(slot) else {
            return []
        }
        return blocks
    }

    // MARK: Checksum

    /// The checksum this segment should carry, given its IPv4 pseudo-header addresses.
    public func computeChecksum(source: IPv4Address, destination: IPv4Address) -> UInt16 {
        var sum = Self.pseudoHeaderSum(source: source, destination: destination, length: bytes.count)
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<Field.checksum]))
        sum.add(bytes: UnsafeRawBufferPointer(rebasing: bytes[(Field.checksum + 2)...]))
        return sum.value
    }

    static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, length: Int) -> InternetChecksum {
        var sum = InternetChecksum()
        sum.add(source.value)
        sum.add(destination.value)
        sum.add(UInt16(IPv4Packet.tcpProtocol))
        sum.add(UInt16(truncatingIfNeeded: length))
        return sum
    }

    public func isChecksumValid(source: IPv4Address, destination: IPv4Address) -> Bool {
        computeChecksum(source: source, destination: destination) == checksum
    }

    /// Recomputes and stores the full checksum (needed when the kernel handed
    /// over a packet whose checksum holds only the pseudo-header sum).
    public func updateChecksum(source: IPv4Address, destination: IPv4Address) {
        bytes.setUInt16(computeChecksum(source: source, destination: destination), at: Field.checksum)
    }

    /// Patches the checksum for a pseudo-header address change.
    public func adjustChecksum(forAddressChangeFrom old: IPv4Address, to new: IPv4Address) {
        bytes.setUInt16(InternetChecksum.update(checksum, replacing: old.value, with: new.value), at: Field.checksum)
    }

    // MARK: Rewriting fields

    public func setSourcePort(_ port: UInt16) { set16(port, at: Field.sourcePort) }
    public func setDestinationPort(_ port: UInt16) { set16(port, at: Field.destinationPort) }
    public func setSequenceNumber(_ number: SequenceNumber) { set32(number.rawValue, at: Field.sequenceNumber) }
    public func setAcknowledgmentNumber(_ number: SequenceNumber) {
        set32(number.rawValue, at: Field.acknowledgmentNumber)
    }
    /// Sets the raw window field (already shifted by the sender's scale).
    public func setWindow(_ window: UInt16) { set16(window, at: Field.window) }
    public func setUrgentPointer(_ pointer: UInt16) { set16(pointer, at: Field.urgentPointer) }

    public func setFlags(_ flags: TCPFlags) {
        bytes.replaceBytes(
            in: Field.flags..<(Field.flags + 1),
            with: CollectionOfOne(flags.rawValue),
            checksumAt: Field.checksum
        )
    }

    /// Rewrites the MSS option's value; `false` if the segment has none.
    @discardableResult
    public func setMaximumSegmentSize(_ mss: UInt16) -> Bool {
        guard let slot = firstSlot(ofKind: TCPOption.Kind.maximumSegmentSize) else { return false }
        set16(mss, at: slot.offset + 2)
        return true
    }

    /// Rewrites the window-scale option's shift; `false` if the segment has none.
    @discardableResult
    public func setWindowScale(_ shift: UInt8) -> Bool {
        guard let slot = firstSlot(ofKind: TCPOption.Kind.windowScale) else { return false }
        bytes.replaceBytes(
            in: (slot.offset + 2)..<(slot.offset + 3),
            with: CollectionOfOne(shift),
            checksumAt: Field.checksum
        )
        return true
    }

    /// Rewrites TSval and TSecr; `false` if the segment has no timestamps option.
    @discardableResult
    public func setTimestamps(value: UInt32, echoReply: UInt32) -> Bool {
        guard let slot = firstSlot(ofKind: TCPOption.Kind.timestamps) else { return false }
        set32(value, at: slot.offset + 2)
        set32(echoReply, at: slot.offset + 6)
        return true
    }

    /// Rewrites every SACK block edge through `transform`.
    public func mapSACKBlocks(_ transform: (SACKBlock) -> SACKBlock) {
        guard let slot = firstSlot(ofKind: TCPOption.Kind.sack) else { return }
        for at in stride(from: slot.offset + 2, to: slot.offset + slot.length, by: 8) {
            let old = SACKBlock(
                left: SequenceNumber(bytes.uint32(at: at)),
                right: SequenceNumber(bytes.uint32(at: at + 4))
            )
            let new = transform(old)
            set32(new.left.rawValue, at: at)
            set32(new.right.rawValue, at: at + 4)
        }
    }

    /// Overwrites every option of `kind` with No-Operation bytes, so the
    /// receiver ignores it; the header length stays the same. Returns how
    /// many options were removed.
    @discardableResult
    public func replaceOptionsWithNoOperations(kind: UInt8) -> Int {
        var removed = 0
        for slot in optionSlots where slot.kind == kind {
            let nops = repeatElement(TCPOption.Kind.noOperation, count: slot.length)
            bytes.replaceBytes(in: slot.offset..<(slot.offset + slot.length), with: nops, checksumAt: Field.checksum)
            removed += 1
        }
        return removed
    }

    private func set16(_ value: UInt16, at offset: Int) {
        // Every 16-bit field written here sits at an even offset, except option
        // values after odd-length options; replaceBytes handles both.
        if offset & 1 == 0 {
            let old = bytes.uint16(at: offset)
            bytes.setUInt16(value, at: offset)
            bytes.setUInt16(InternetChecksum.update(checksum, replacing: old, with: value), at: Field.checksum)
        } else {
            bytes.replaceBytes(
                in: offset..<(offset + 2),
                with: [UInt8(value >> 8), UInt8(truncatingIfNeeded: value)],
                checksumAt: Field.checksum
            )
        }
    }

    private func set32(_ value: UInt32, at offset: Int) {
        if offset & 1 == 0 {
            let old = bytes.uint32(at: offset)
            bytes.setUInt32(value, at: offset)
            bytes.setUInt16(InternetChecksum.update(checksum, replacing: old, with: value), at: Field.checksum)
        } else {
            let encoded = [
                UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
            ]
            bytes.replaceBytes(in: offset..<(offset + 4), with: encoded, checksumAt: Field.checksum)
        }
    }
}
