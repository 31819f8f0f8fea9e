import FTCPReplication
import Testing

@Suite("Sealing refuses what cannot be sent")
struct SealErrorTests {
    @Test("a packet over 65,000 bytes is a typed error and uses no counter")
    func oversizedPacket() throws {
        var sealer = Fixtures.sealer(.secondary)
        let packet = [UInt8](repeating: 0x45, count: 65_001)
        #expect(throws: ReplicationError.packetTooLarge(size: 65_001, limit: 65_000)) {
            try sealer.seal(.segment(packet: packet))
        }
        #expect(sealer.nextCounter == 0)
        #expect(try sealer.seal(.segment(packet: Array(packet.dropLast()))).count == 65_060)
        #expect(sealer.nextCounter == 1)
    }

    @Test("an empty packet is refused")
    func emptyPacket() {
        var sealer = Fixtures.sealer(.primary)
        #expect(throws: ReplicationError.emptyPacket) { try sealer.seal(.inject(packet: [])) }
    }

    @Test("each role sends only its own kinds of message")
    func direction() {
        var primary = Fixtures.sealer(.primary)
        var secondary = Fixtures.sealer(.secondary)
        #expect(throws: ReplicationError.wrongDirection(kind: .segment, sender: .primary)) {
            try primary.seal(.segment(packet: Fixtures.packet))
        }
        #expect(throws: ReplicationError.wrongDirection(kind: .inject, sender: .secondary)) {
            try secondary.seal(.inject(packet: Fixtures.packet))
        }
    }

    @Test("error descriptions name the numbers")
    func descriptions() {
        let text = ReplicationError.packetTooLarge(size: 70_000, limit: 65_000).description
        #expect(text.contains("70000") && text.contains("65000"))
    }
}
