import Testing
import FTCPWire
@testable import FTCPBridge

@Suite("Secondary bridge (paper §3.1)")
struct SecondaryBridgeTests {
    typealias S = PrimaryScenario
    var bridge = SecondaryBridge(configuration: BridgeConfiguration(
        serviceAddress: S.serviceAddress, secondaryAddress: S.secondaryAddress, protectedPorts: [S.serverPort]))

    @Test("a captured client segment to the primary is readdressed to the secondary with valid checksums")
    mutating func capture() throws {
        var bytes = try S.fromClient(seq: 7, ack: 9, payload: [1, 2, 3]).build()
        // A sender's checksum offload leaves only the pseudo-header sum in the field.
        bytes[36] = 0x12; bytes[37] = 0x34
        let verdict = try bytes.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(verdict == .inject)
        let fields = try TCPPacketFields(parsing: bytes)
        #expect(fields.destination == S.secondaryAddress)
        #expect(fields.source == S.clientAddress)
        #expect(fields.payload == [1, 2, 3])
        let valid = try bytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid }
        #expect(valid)
        #expect(bridge.counters.injected == 1)
    }

    @Test("segments to other addresses or unprotected ports are ignored", arguments: [
        (IPv4Address(10, 80, 0, 99), UInt16(9999)), (IPv4Address(10, 80, 0, 1), UInt16(22)),
    ])
    mutating func ignores(destination: IPv4Address, port: UInt16) throws {
        var fields = S.fromClient(seq: 1)
        fields.destination = destination
        fields.destinationPort = port
        var bytes = try fields.build()
        let verdict = try bytes.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(verdict == .ignore)
        #expect(try TCPPacketFields(parsing: bytes) == fields, "an ignored packet is not touched")
    }

    @Test("every segment the secondary's kernel sends from a protected port goes to the primary, RSTs included")
    mutating func divert() throws {
        for flags: TCPFlags in [[.syn, .ack], [.ack], [.rst], [.fin, .ack]] {
            var bytes = try S.fromServer(.secondary, seq: 1, ack: 1, flags: flags).build()
            let verdict = try bytes.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
            #expect(verdict == .relayToPrimary)
        }
        var other = S.fromServer(.secondary, seq: 1, ack: 1)
        other.sourcePort = 22
        var bytes = try other.build()
        let verdict = try bytes.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
        #expect(verdict == .pass)
    }
}
