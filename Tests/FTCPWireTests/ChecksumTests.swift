import Testing

@testable import FTCPWire

@Suite("Internet checksum: full (RFC 1071) and incremental (RFC 1624)")
struct ChecksumTests {
    @Test("RFC 1624 §4 example: eqn. 3 gives 0x0000 where eqn. 2 would give 0xFFFF")
    func rfc1624Example() {
        #expect(InternetChecksum.update(0xDD2F, replacing: UInt16(0x5555), with: UInt16(0x3285)) == 0x0000)
    }

    @Test("RFC 1071 §3 example words sum to 0xDDF2 (checksum 0x220D)")
    func rfc1071Example() {
        var sum = InternetChecksum()
        sum.add([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7])
        #expect(sum.value == ~UInt16(0xDDF2))
    }

    @Test("an odd final byte is padded with zero on the right")
    func oddLength() {
        var odd = InternetChecksum()
        odd.add([0x12, 0x34, 0x56])
        var even = InternetChecksum()
        even.add([0x12, 0x34, 0x56, 0x00])
        #expect(odd.value == even.value)
    }

    @Test("the word-at-a-time sum equals a byte-pair reference for random buffers")
    func fastSumMatchesReference() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<2_000 {
            let data = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var reference: UInt32 = 0
            var index = 0
            while index < data.count {
                let high = UInt32(data[index]) << 8
                let low = index + 1 < data.count ? UInt32(data[index + 1]) : 0
                reference += high | low
                index += 2
            }
            while reference > 0xFFFF { reference = (reference & 0xFFFF) + (reference >> 16) }
            var sum = InternetChecksum()
            sum.add(data)
            #expect(sum.value == ~UInt16(reference))
        }
    }

    /// One rewrite a bridge performs, applied through the view's setters.
    enum Edit: CaseIterable {
        case source, destination, sourcePort, destinationPort, sequence, acknowledgment, window, urgent
        case flags, timeToLive, mss, windowScale, timestamps, sackBlocks, stripTimestamps
    }

    @Test("every incremental update equals a full recomputation, for random packets and edits")
    func incrementalEqualsFull() throws {
        var rng = SplitMix64(seed: 1624)
        var editsApplied = 0
        for _ in 0..<3_000 {
            let fields = TCPPacketFields.random(using: &rng, maxPayload: 64)
            let packet = try fields.build()
            let edits = (0..<Int.random(in: 1...5, using: &rng)).map { _ in Edit.allCases.randomElement(using: &rng)! }
            let value = UInt32.random(in: 0...UInt32.max, using: &rng)
            let (_, valid) = try withTCPPacket(packet) { view -> Bool in
                for edit in edits {
                    if apply(edit, value: value, to: view) { editsApplied += 1 }
                }
                let ipValid = view.ip.headerChecksum == view.ip.computeHeaderChecksum()
                let tcpValid =
                    view.tcp.checksum
                    == view.tcp.computeChecksum(source: view.ip.source, destination: view.ip.destination)
                return ipValid && tcpValid
            }
            #expect(valid, "edits \(edits) on \(fields)")
        }
        #expect(editsApplied > 5_000)
    }

    /// Applies `edit`; returns whether the packet had the field (options may be absent).
    func apply(_ edit: Edit, value: UInt32, to view: TCPPacket) -> Bool {
        let low16 = UInt16(truncatingIfNeeded: value)
        switch edit {
        case .source:
            view.setSource(IPv4Address(value)); return view.ip.source == IPv4Address(value)
        case .destination:
            view.setDestination(IPv4Address(value)); return view.ip.destination == IPv4Address(value)
        case .sourcePort:
            view.tcp.setSourcePort(low16); return view.tcp.sourcePort == low16
        case .destinationPort:
            view.tcp.setDestinationPort(low16); return view.tcp.destinationPort == low16
        case .sequence:
            view.tcp.setSequenceNumber(SequenceNumber(value)); return view.tcp.sequenceNumber.rawValue == value
        case .acknowledgment:
            view.tcp.setAcknowledgmentNumber(SequenceNumber(value));
            return view.tcp.acknowledgmentNumber.rawValue == value
        case .window:
            view.tcp.setWindow(low16); return view.tcp.window == low16
        case .urgent:
            view.tcp.setUrgentPointer(low16); return view.tcp.urgentPointer == low16
        case .flags:
            view.tcp.setFlags(TCPFlags(rawValue: UInt8(truncatingIfNeeded: value)))
            return view.tcp.flags.rawValue == UInt8(truncatingIfNeeded: value)
        case .timeToLive:
            view.ip.setTimeToLive(UInt8(truncatingIfNeeded: value));
            return view.ip.timeToLive == UInt8(truncatingIfNeeded: value)
        case .mss:
            return view.tcp.setMaximumSegmentSize(low16) && view.tcp.maximumSegmentSize == low16
        case .windowScale:
            return view.tcp.setWindowScale(UInt8(value % 15)) && view.tcp.windowScale == UInt8(value % 15)
        case .timestamps:
            guard view.tcp.setTimestamps(value: value, echoReply: ~value) else { return false }
            return view.tcp.timestamps?.value == value && view.tcp.timestamps?.echoReply == ~value
        case .sackBlocks:
            let before = view.tcp.sackBlocks
            guard !before.isEmpty else { return false }
            view.tcp.mapSACKBlocks { SACKBlock(left: $0.left + value, right: $0.right + value) }
            return view.tcp.sackBlocks == before.map { SACKBlock(left: $0.left + value, right: $0.right + value) }
        case .stripTimestamps:
            let removed = view.tcp.replaceOptionsWithNoOperations(kind: TCPOption.Kind.timestamps)
            return removed > 0 && view.tcp.timestamps == nil
        }
    }

    @Test("rewriting a field back to its old value restores the original bytes exactly")
    func rewriteIsReversible() throws {
        let original = GoldenSegments.sackAck
        let (rewritten, _) = try withTCPPacket(original) { view in
            let ack = view.tcp.acknowledgmentNumber
            view.tcp.setAcknowledgmentNumber(ack + 30)
            view.tcp.mapSACKBlocks { SACKBlock(left: $0.left + 30, right: $0.right + 30) }
            view.tcp.mapSACKBlocks { SACKBlock(left: $0.left - 30, right: $0.right - 30) }
            view.tcp.setAcknowledgmentNumber(ack)
        }
        #expect(rewritten == original)
    }

    @Test(
        "a sum taken piece by piece at odd and even offsets equals the sum over the joined bytes (every cut in three)"
    )
    func piecesAtAnyOffset() {
        for count in 0...33 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ 0x5d) }
            var whole = InternetChecksum()
            whole.add(bytes)
            for first in 0...count {
                for second in first...count {
                    var pieces = InternetChecksum()
                    bytes.withUnsafeBytes { buffer in
                        for (start, end) in [(0, first), (first, second), (second, count)] {
                            pieces.add(bytes: UnsafeRawBufferPointer(rebasing: buffer[start..<end]), atOffset: start)
                        }
                    }
                    #expect(pieces.value == whole.value, "cut at \(first) and \(second) of \(count) bytes")
                }
            }
        }
    }
}
