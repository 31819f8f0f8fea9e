import FTCPWire
import Testing

/// Malformed input must become a `WireError`, never a crash or an
/// out-of-bounds read. Offsets below refer to the golden SYN: IPv4 header at
/// 0, TCP header at 20, options at 40..<60 (MSS, SACK-permitted, timestamps,
/// NOP, window scale).
@Suite("Malformed packets are errors")
struct MalformedInputTests {

    /// The golden SYN with `edit` applied.
    func syn(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var packet = GoldenSegments.syn
        edit(&packet)
        return packet
    }

    @Test("every truncation of a valid packet is an error", arguments: GoldenPacket.all)
    func everyTruncation(golden: GoldenPacket) {
        let packet = golden.bytes
        for length in 0..<packet.count {
            let prefix = Array(packet[0..<length])
            #expect(validationError(prefix) != nil, "prefix of \(length) bytes was accepted")
            #expect(validationError(prefix, allowTrailingBytes: true) != nil, "prefix of \(length) bytes was accepted")
        }
        #expect(validationError(packet) == nil)
    }

    @Test("a buffer shorter than an IPv4 header")
    func shortBuffer() {
        #expect(validationError([0x45, 0, 0]) == .truncated(layer: .ipv4Header, needed: 20, available: 3))
        #expect(validationError([]) == .truncated(layer: .ipv4Header, needed: 20, available: 0))
    }

    @Test("an IPv6 version nibble")
    func notIPv4() {
        #expect(validationError(syn { $0[0] = 0x65 }) == .notIPv4(version: 6))
    }

    @Test("IHL below 5", arguments: [UInt8(0), 1, 4])
    func ihlTooSmall(ihl: UInt8) {
        #expect(validationError(syn { $0[0] = 0x40 | ihl }) == .ipHeaderLengthTooSmall(ihl: ihl))
    }

    @Test("IHL pointing past the buffer")
    func ihlBeyondBuffer() {
        #expect(
            validationError(Array(syn { $0[0] = 0x4F }[0..<40]))
                == .truncated(layer: .ipv4Header, needed: 60, available: 40)
        )
    }

    @Test("total length larger than the buffer")
    func totalLengthTooLarge() {
        #expect(validationError(syn { $0[3] = 61 }) == .truncated(layer: .ipv4Datagram, needed: 61, available: 60))
    }

    @Test("total length smaller than the buffer, or than the header")
    func totalLengthTooSmall() {
        #expect(validationError(syn { $0[3] = 59 }) == .totalLengthMismatch(totalLength: 59, bufferLength: 60))
        #expect(validationError(syn { $0[3] = 19 }) == .totalLengthMismatch(totalLength: 19, bufferLength: 60))
    }

    @Test("first fragment, middle fragment and last fragment")
    func fragments() {
        #expect(
            validationError(
                syn {
                    $0[6] = 0x20; $0[7] = 0
                }
            ) == .fragmented(offset: 0, moreFragments: true)
        )
        #expect(
            validationError(
                syn {
                    $0[6] = 0x20; $0[7] = 2
                }
            ) == .fragmented(offset: 16, moreFragments: true)
        )
        #expect(
            validationError(
                syn {
                    $0[6] = 0x00; $0[7] = 2
                }
            ) == .fragmented(offset: 16, moreFragments: false)
        )
    }

    @Test("a UDP datagram")
    func notTCP() {
        #expect(validationError(syn { $0[9] = 17 }) == .notTCP(protocolNumber: 17))
    }

    @Test("TCP data offset below 5", arguments: [UInt8(0), 4])
    func dataOffsetTooSmall(offset: UInt8) {
        #expect(validationError(syn { $0[32] = offset << 4 }) == .dataOffsetTooSmall(dataOffset: offset))
    }

    @Test("TCP data offset past the end of the segment")
    func dataOffsetBeyond() {
        #expect(validationError(syn { $0[32] = 0xF0 }) == .dataOffsetBeyondSegment(headerLength: 60, segmentLength: 40))
    }

    @Test("an option whose length byte is missing")
    func optionLengthByteMissing() {
        // Window scale (kind 3) moved to the last byte of the option space.
        let packet = syn {
            $0[57] = 1; $0[58] = 1; $0[59] = 3
        }
        #expect(validationError(packet) == .optionOverrun(kind: 3, offset: 39))
    }

    @Test("an option whose declared length runs past the header")
    func optionOverrun() {
        // An unknown option of length 6 starting 3 bytes before the end.
        let packet = syn {
            $0[57] = 99; $0[58] = 6
        }
        #expect(validationError(packet) == .optionOverrun(kind: 99, offset: 37))
    }

    @Test("option lengths of 0 and 1", arguments: [UInt8(0), 1])
    func optionLengthZeroOrOne(length: UInt8) {
        #expect(validationError(syn { $0[41] = length }) == .invalidOptionLength(kind: 2, length: length, offset: 20))
    }

    @Test("known options with the wrong length")
    func wrongFixedLengths() {
        // MSS claiming 6 bytes, SACK-permitted claiming 4, timestamps claiming 8.
        #expect(validationError(syn { $0[41] = 6 }) == .invalidOptionLength(kind: 2, length: 6, offset: 20))
        #expect(validationError(syn { $0[45] = 4 }) == .invalidOptionLength(kind: 4, length: 4, offset: 24))
        #expect(validationError(syn { $0[47] = 8 }) == .invalidOptionLength(kind: 8, length: 8, offset: 26))
    }

    @Test("a SACK option whose length is not 2 + 8n")
    func sackLength() {
        // The golden SACK's block option sits at TCP offset 34 with length 10.
        var packet = GoldenSegments.sackAck
        packet[20 + 35] = 11
        #expect(validationError(packet) == .invalidOptionLength(kind: 5, length: 11, offset: 34))
        packet[20 + 35] = 2
        #expect(validationError(packet) == .invalidOptionLength(kind: 5, length: 2, offset: 34))
    }

    @Test("End of Option List ends the walk: garbage after it is padding")
    func eolEndsOptions() throws {
        let packet = syn {
            $0[40] = 0; $0[41] = 0xFF; $0[42] = 0xFF
        }
        let (_, options) = try withTCPPacket(packet) { $0.tcp.options }
        #expect(options.isEmpty)
    }

    @Test("random corruption of valid packets never crashes, and whatever is accepted can be read and rebuilt")
    func randomCorruption() throws {
        var rng = SplitMix64(seed: 404)
        var accepted = 0
        var rejected = 0
        for _ in 0..<20_000 {
            var packet = GoldenPacket.all.randomElement(using: &rng)!.bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                packet[Int.random(in: 0..<min(packet.count, 64), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { packet = Array(packet.prefix(Int.random(in: 0...packet.count, using: &rng))) }
            if validationError(packet) != nil {
                rejected += 1
                continue
            }
            accepted += 1
            let fields = try TCPPacketFields(parsing: packet)
            _ = try withTCPPacket(packet) { view in
                _ = view.tcp.options
                _ = view.tcp.sackBlocks
                _ = view.isChecksumValid
            }
            // Rebuilding may fail only for reasons the builder names (IP options are dropped).
            _ = try? fields.build()
        }
        #expect(accepted > 1_000)
        #expect(rejected > 1_000)
    }
}
