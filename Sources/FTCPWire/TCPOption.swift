/// One TCP option, decoded (RFC 9293 §3.2, RFC 7323, RFC 2018).
///
/// Options the wire layer does not interpret are kept whole as `.unknown`,
/// so a segment can be parsed and rebuilt without losing them.
public enum TCPOption: Hashable, Sendable {
    case endOfOptionList
    case noOperation
    case maximumSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    case sack([SACKBlock])
    case timestamps(value: UInt32, echoReply: UInt32)
    /// Any other kind, with the bytes after the kind and length octets.
    case unknown(kind: UInt8, data: [UInt8])

    /// Option kind numbers (IANA "TCP Option Kind Numbers").
    public enum Kind {
        public static let endOfOptionList: UInt8 = 0
        public static let noOperation: UInt8 = 1
        public static let maximumSegmentSize: UInt8 = 2
        public static let windowScale: UInt8 = 3
        public static let sackPermitted: UInt8 = 4
        public static let sack: UInt8 = 5
        public static let timestamps: UInt8 = 8
    }

    /// Largest number of SACK blocks that fit in the 40-byte option space.
    public static let maximumSACKBlocks = 4

    public var kind: UInt8 {
        switch self {
        case .endOfOptionList: return Kind.endOfOptionList
        case .noOperation: return Kind.noOperation
        case .maximumSegmentSize: return Kind.maximumSegmentSize
        case .windowScale: return Kind.windowScale
        case .sackPermitted: return Kind.sackPermitted
        case .sack: return Kind.sack
        case .timestamps: return Kind.timestamps
        case let .unknown(kind, _): return kind
        }
    }

    /// Bytes this option takes on the wire.
    public var encodedLength: Int {
        switch self {
        case .endOfOptionList, .noOperation: return 1
        case .maximumSegmentSize: return 4
        case .windowScale: return 3
        case .sackPermitted: return 2
        case let .sack(blocks): return 2 + 8 * blocks.count
        case .timestamps: return 10
        case let .unknown(_, data): return 2 + data.count
        }
    }

    /// The one valid length for kinds that have one, else `nil`.
    static func fixedLength(ofKind kind: UInt8) -> Int? {
        switch kind {
        case Kind.maximumSegmentSize: return 4
        case Kind.windowScale: return 3
        case Kind.sackPermitted: return 2
        case Kind.timestamps: return 10
        default: return nil
        }
    }

    /// Writes the option at `offset`; the caller has checked the room.
    func encode(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer[offset] = kind
        switch self {
        case .endOfOptionList, .noOperation:
            return
        default:
            buffer[offset + 1] = UInt8(encodedLength)
        }
        switch self {
        case let .maximumSegmentSize(mss):
            buffer.setUInt16(mss, at: offset + 2)
        case let .windowScale(shift):
            buffer[offset + 2] = shift
        case let .sack(blocks):
            for (index, block) in blocks.enumerated() {
                buffer.setUInt32(block.left.rawValue, at: offset + 2 + index * 8)
                buffer.setUInt32(block.right.rawValue, at: offset + 6 + index * 8)
            }
        case let .timestamps(value, echoReply):
            buffer.setUInt32(value, at: offset + 2)
            buffer.setUInt32(echoReply, at: offset + 6)
        case let .unknown(_, data):
            for (index, byte) in data.enumerated() { buffer[offset + 2 + index] = byte }
        case .endOfOptionList, .noOperation, .sackPermitted:
            break
        }
    }
}

/// One selective-acknowledgment block: bytes `[left, right)` (RFC 2018).
public struct SACKBlock: Hashable, Sendable {
    public var left: SequenceNumber
    public var right: SequenceNumber

    public init(left: SequenceNumber, right: SequenceNumber) {
        self.left = left
        self.right = right
    }
}

/// Where one option sits in a TCP header: its kind, offset from the start of
/// the TCP header, and length in bytes. Produced by walking a validated header.
public struct TCPOptionSlot: Hashable, Sendable {
    public var kind: UInt8
    public var offset: Int
    public var length: Int
}

/// Walks the option bytes of a TCP header, validating as it goes.
///
/// Stops after End of Option List (the rest of the option space is padding).
struct TCPOptionWalker {
    let header: UnsafeMutableRawBufferPointer
    var offset: Int
    let end: Int

    init(header: UnsafeMutableRawBufferPointer, headerLength: Int) {
        self.header = header
        offset = TCPSegment.minimumHeaderLength
        end = headerLength
    }

    mutating func next() throws(WireError) -> TCPOptionSlot? {
        guard offset < end else { return nil }
        let kind = header[offset]
        switch kind {
        case TCPOption.Kind.endOfOptionList:
            let slot = TCPOptionSlot(kind: kind, offset: offset, length: 1)
            offset = end
            return slot
        case TCPOption.Kind.noOperation:
            defer { offset += 1 }
            return TCPOptionSlot(kind: kind, offset: offset, length: 1)
        default:
            guard offset + 1 < end else { throw .optionOverrun(kind: kind, offset: offset) }
            let length = header[offset + 1]
            guard length >= 2 else { throw .invalidOptionLength(kind: kind, length: length, offset: offset) }
            if let fixed = TCPOption.fixedLength(ofKind: kind), Int(length) != fixed {
                throw .invalidOptionLength(kind: kind, length: length, offset: offset)
            }
            if kind == TCPOption.Kind.sack, length < 10 || (length - 2) % 8 != 0 {
                throw .invalidOptionLength(kind: kind, length: length, offset: offset)
            }
            guard offset + Int(length) <= end else { throw .optionOverrun(kind: kind, offset: offset) }
            defer { offset += Int(length) }
            return TCPOptionSlot(kind: kind, offset: offset, length: Int(length))
        }
    }
}
