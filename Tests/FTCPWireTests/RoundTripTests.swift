import FTCPWire
import Testing

@Suite("Building and parsing are inverse")
struct RoundTripTests {
    @Test("parse(build(x)) == x for random packets")
    func parseBuild() throws {
        var rng = SplitMix64(seed: 2003)
        for _ in 0..<2_000 {
            let fields = TCPPacketFields.random(using: &rng)
            let packet = try fields.build()
            #expect(packet.count == fields.totalLength)
            let parsed = try TCPPacketFields(parsing: packet)
            #expect(parsed == fields)
            let (_, valid) = try withTCPPacket(packet) { $0.isChecksumValid }
            #expect(valid)
        }
    }

    @Test("build(parse(p)) == p for packets built from random fields")
    func buildParse() throws {
        var rng = SplitMix64(seed: 9293)
        for _ in 0..<500 {
            let packet = try TCPPacketFields.random(using: &rng).build()
            #expect(try TCPPacketFields(parsing: packet).build() == packet)
        }
    }

    @Test("options are padded with End of Option List to a 4-byte boundary")
    func padding() throws {
        let fields = TCPPacketFields(
            source: IPv4Address(10, 80, 0, 1),
            destination: IPv4Address(10, 80, 0, 10),
            sourcePort: 9999,
            destinationPort: 40000,
            sequenceNumber: SequenceNumber(1),
            flags: [.syn],
            options: [.windowScale(7)]
        )
        let packet = try fields.build()
        #expect(fields.tcpHeaderLength == 24)
        #expect(Array(packet[40..<44]) == [3, 3, 7, 0])
    }

    @Test("over-long option lists, bad SACK block counts and tiny buffers are errors, not crashes")
    func builderRejects() throws {
        var fields = TCPPacketFields(
            source: IPv4Address(1),
            destination: IPv4Address(2),
            sourcePort: 1,
            destinationPort: 2,
            sequenceNumber: SequenceNumber(0),
            flags: [.ack],
            options: Array(repeating: .timestamps(value: 1, echoReply: 2), count: 5)
        )
        #expect(throws: WireError.fieldOverflow(field: "TCP options length", value: 50, limit: 40)) {
            try fields.build()
        }
        fields.options = [.sack([])]
        #expect(throws: WireError.fieldOverflow(field: "SACK block count", value: 0, limit: 4)) { try fields.build() }
        fields.options = []
        fields.payload = [UInt8](repeating: 1, count: 70_000)
        #expect(throws: WireError.fieldOverflow(field: "IPv4 total length", value: 70_040, limit: 65_535)) {
            try fields.build()
        }
        fields.payload = [1, 2, 3]
        var small = [UInt8](repeating: 0, count: 20)
        small.withUnsafeMutableBytes { buffer in
            #expect(throws: WireError.truncated(layer: .buffer, needed: 43, available: 20)) {
                try fields.build(into: buffer)
            }
        }
    }
}
