import Foundation

/// A reader for classic pcap files (what `tcpdump -w` writes): the global header, then records.
/// It understands Ethernet, Linux cooked (SLL, SLL2) and raw IP link types and decodes just
/// enough IPv4/TCP/UDP to count payload bytes. It never traps on malformed input: it throws.
struct PcapFile {
    enum Failure: Error, CustomStringConvertible {
        case tooShort
        case badMagic(UInt32)
        case truncatedRecord(index: Int)

        var description: String {
            switch self {
            case .tooShort: return "pcap file shorter than its 24-byte global header"
            case let .badMagic(value): return "not a pcap file (magic 0x\(String(value, radix: 16)))"
            case let .truncatedRecord(index): return "record \(index) runs past the end of the file"
            }
        }
    }

    /// One captured frame.
    struct Record {
        /// Capture time in seconds since the epoch.
        var timestamp: Double
        /// Length of the frame on the wire (may exceed `data.count` when the snap length cut it).
        var originalLength: Int
        /// The captured bytes.
        var data: ArraySlice<UInt8>
    }

    /// The link-layer header type (1 Ethernet, 101 raw IP, 113 Linux SLL, 276 Linux SLL2).
    let linkType: UInt32
    let snapLength: UInt32
    let records: [Record]

    init(contentsOf path: String) throws {
        try self.init(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    init(bytes: [UInt8]) throws {
        guard bytes.count >= 24 else { throw Failure.tooShort }
        let magic = Self.read32(bytes, 0, bigEndian: false)
        let bigEndian: Bool
        let nanoseconds: Bool
        switch magic {
        case 0xa1b2_c3d4: (bigEndian, nanoseconds) = (false, false)
        case 0xa1b2_3c4d: (bigEndian, nanoseconds) = (false, true)
        case 0xd4c3_b2a1: (bigEndian, nanoseconds) = (true, false)
        case 0x4d3c_b2a1: (bigEndian, nanoseconds) = (true, true)
        default: throw Failure.badMagic(magic)
        }
        snapLength = Self.read32(bytes, 16, bigEndian: bigEndian)
        linkType = Self.read32(bytes, 20, bigEndian: bigEndian) & 0x0fff_ffff
        var records: [Record] = []
        var offset = 24
        while offset < bytes.count {
            guard offset + 16 <= bytes.count else { throw Failure.truncatedRecord(index: records.count) }
            let seconds = Double(Self.read32(bytes, offset, bigEndian: bigEndian))
            let fraction = Double(Self.read32(bytes, offset + 4, bigEndian: bigEndian))
            let captured = Int(Self.read32(bytes, offset + 8, bigEndian: bigEndian))
            let original = Int(Self.read32(bytes, offset + 12, bigEndian: bigEndian))
            let start = offset + 16
            guard captured <= bytes.count - start else { throw Failure.truncatedRecord(index: records.count) }
            records.append(
                Record(
                    timestamp: seconds + fraction / (nanoseconds ? 1e9 : 1e6),
                    originalLength: original,
                    data: bytes[start..<(start + captured)]
                )
            )
            offset = start + captured
        }
        self.records = records
    }

    static func read32(_ bytes: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt32 {
        let b = (0..<4).map { UInt32(bytes[offset + $0]) }
        return bigEndian ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
    }

    /// The IPv4 packets of the capture, decoded; frames of other protocols are left out.
    var ipv4Packets: [IPv4Summary] {
        records.compactMap { IPv4Summary(record: $0, linkType: linkType) }
    }
}

/// The fields of an IPv4 packet (and its TCP or UDP header) the lab tests look at.
struct IPv4Summary {
    var timestamp: Double
    var source: String
    var destination: String
    var transportProtocol: UInt8
    /// IPv4 total length, or (for GSO/GRO super-frames that leave it 0) the frame's length.
    var totalLength: Int
    var sourcePort: UInt16?
    var destinationPort: UInt16?
    var tcpSequence: UInt32?
    var tcpAcknowledgment: UInt32?
    /// TCP control bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    var tcpFlags: UInt8?
    /// Payload bytes of the TCP segment or UDP datagram (from the headers, not the capture length).
    var payloadLength: Int
    /// The captured part of the payload (may be cut by the snap length).
    var capturedPayload: ArraySlice<UInt8>

    init?(record: PcapFile.Record, linkType: UInt32) {
        let data = record.data
        var offset = data.startIndex
        var linkHeader = 0
        var etherType: UInt16
        func u16(_ index: Int) -> UInt16 { UInt16(data[index]) << 8 | UInt16(data[index + 1]) }
        func u32(_ index: Int) -> UInt32 { UInt32(u16(index)) << 16 | UInt32(u16(index + 2)) }
        switch linkType {
        case 1:
            guard data.count >= 14 else { return nil }
            etherType = u16(offset + 12)
            linkHeader = 14
            while etherType == 0x8100 || etherType == 0x88a8, data.count >= linkHeader + 4 {
                etherType = u16(offset + linkHeader + 2)
                linkHeader += 4
            }
        case 113:
            guard data.count >= 16 else { return nil }
            etherType = u16(offset + 14)
            linkHeader = 16
        case 276:
            guard data.count >= 20 else { return nil }
            etherType = u16(offset)
            linkHeader = 20
        case 101, 228:
            etherType = 0x0800
        case 239:
            // NFLOG: a 4-byte header, then type-length-value attributes (lengths in host order,
            // each padded to 4 bytes); attribute 9 (NFULA_PAYLOAD) holds the IP packet.
            guard data.count >= 4, data[offset] == 2 else { return nil }
            var attribute = offset + 4
            var payloadAt: Int?
            while data.endIndex - attribute >= 4 {
                let length = Int(UInt16(data[attribute]) | UInt16(data[attribute + 1]) << 8)
                let type = UInt16(data[attribute + 2]) | UInt16(data[attribute + 3]) << 8
                guard length >= 4, attribute + length <= data.endIndex else { return nil }
                if type & 0x7fff == 9 { payloadAt = attribute + 4; break }
                attribute += (length + 3) & ~3
            }
            guard let payloadAt else { return nil }
            etherType = 0x0800
            linkHeader = payloadAt - offset
        default:
            return nil
        }
        guard etherType == 0x0800 else { return nil }
        offset += linkHeader
        guard data.endIndex - offset >= 20, data[offset] >> 4 == 4 else { return nil }
        let headerLength = Int(data[offset] & 0x0f) * 4
        guard headerLength >= 20, data.endIndex - offset >= headerLength else { return nil }
        var totalLength = Int(u16(offset + 2))
        if totalLength == 0 { totalLength = record.originalLength - linkHeader }
        timestamp = record.timestamp
        transportProtocol = data[offset + 9]
        source = (12..<16).map { String(data[offset + $0]) }.joined(separator: ".")
        destination = (16..<20).map { String(data[offset + $0]) }.joined(separator: ".")
        self.totalLength = totalLength
        let transport = offset + headerLength
        let available = data.endIndex - transport
        switch transportProtocol {
        case 6:
            guard available >= 20 else { return nil }
            let tcpHeaderLength = Int(data[transport + 12] >> 4) * 4
            sourcePort = u16(transport)
            destinationPort = u16(transport + 2)
            tcpSequence = u32(transport + 4)
            tcpAcknowledgment = u32(transport + 8)
            tcpFlags = data[transport + 13]
            payloadLength = max(0, totalLength - headerLength - tcpHeaderLength)
            let payloadStart = min(data.endIndex, transport + tcpHeaderLength)
            capturedPayload = data[payloadStart..<data.endIndex]
        case 17:
            guard available >= 8 else { return nil }
            sourcePort = u16(transport)
            destinationPort = u16(transport + 2)
            payloadLength = max(0, totalLength - headerLength - 8)
            capturedPayload = data[(transport + 8)..<data.endIndex]
        default:
            payloadLength = max(0, totalLength - headerLength)
            capturedPayload = data[transport..<data.endIndex]
        }
    }
}
