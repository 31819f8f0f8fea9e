import Testing

@testable import FTCPWire

/// Segments captured from a real Linux 6.18 connection (client 10.99.0.10,
/// server 10.99.0.1:5001), checked field by field against what tcpdump showed.
@Suite("Golden segments from Linux TCP")
struct GoldenSegmentTests {
    let client = IPv4Address(10, 99, 0, 10)
    let server = IPv4Address(10, 99, 0, 1)
    let clientISN = SequenceNumber(2_651_591_521)
    let serverISN = SequenceNumber(2_859_674_141)

    @Test("SYN carries MSS, SACK-permitted, timestamps, NOP and window scale in Linux's order")
    func syn() throws {
        _ = try withTCPPacket(GoldenSegments.syn) { packet in
            #expect(packet.ip.version == 4)
            #expect(packet.ip.headerLength == 20)
            #expect(packet.ip.totalLength == 60)
            #expect(packet.ip.identification == 0x9E67)
            #expect(packet.ip.dontFragment)
            #expect(!packet.ip.moreFragments)
            #expect(packet.ip.fragmentOffset == 0)
            #expect(packet.ip.timeToLive == 64)
            #expect(packet.ip.protocolNumber == 6)
            #expect(packet.ip.source == client)
            #expect(packet.ip.destination == server)
            #expect(packet.tcp.sourcePort == 41030)
            #expect(packet.tcp.destinationPort == 5001)
            #expect(packet.tcp.sequenceNumber == clientISN)
            #expect(packet.tcp.acknowledgmentNumber == SequenceNumber(0))
            #expect(packet.tcp.flags == [.syn])
            #expect(packet.tcp.window == 64240)
            #expect(packet.tcp.headerLength == 40)
            #expect(packet.tcp.payloadLength == 0)
            #expect(packet.tcp.sequenceLength == 1)
            #expect(
                packet.tcp.options == [
                    .maximumSegmentSize(1460), .sackPermitted,
                    .timestamps(value: 1_228_401_393, echoReply: 0), .noOperation, .windowScale(10),
                ]
            )
            #expect(packet.tcp.maximumSegmentSize == 1460)
            #expect(packet.tcp.windowScale == 10)
            #expect(packet.tcp.isSACKPermitted)
            #expect(packet.tcp.timestamps?.value == 1_228_401_393)
            #expect(packet.isChecksumValid)
        }
    }

    @Test("SYN-ACK acknowledges the client's ISN + 1 and echoes its timestamp")
    func synAck() throws {
        _ = try withTCPPacket(GoldenSegments.synAck) { packet in
            #expect(packet.ip.source == server)
            #expect(packet.ip.destination == client)
            #expect(packet.ip.identification == 0)
            #expect(packet.tcp.sourcePort == 5001)
            #expect(packet.tcp.destinationPort == 41030)
            #expect(packet.tcp.flags == [.syn, .ack])
            #expect(packet.tcp.sequenceNumber == serverISN)
            #expect(packet.tcp.acknowledgmentNumber == clientISN + 1)
            #expect(packet.tcp.window == 65160)
            #expect(
                packet.tcp.options == [
                    .maximumSegmentSize(1460), .sackPermitted,
                    .timestamps(value: 4_158_437_298, echoReply: 1_228_401_393), .noOperation, .windowScale(10),
                ]
            )
            #expect(packet.isChecksumValid)
        }
    }

    @Test("a full-size data segment carries 1448 bytes after a 12-byte timestamp option block")
    func data() throws {
        _ = try withTCPPacket(GoldenSegments.data) { packet in
            #expect(packet.ip.totalLength == 1500)
            #expect(packet.tcp.flags == [.ack])
            #expect(packet.tcp.sequenceNumber == clientISN + 1)
            #expect(packet.tcp.acknowledgmentNumber == serverISN + 1)
            #expect(packet.tcp.window == 63)
            #expect(packet.tcp.headerLength == 32)
            #expect(
                packet.tcp.options == [
                    .noOperation, .noOperation, .timestamps(value: 1_228_401_395, echoReply: 4_158_437_298),
                ]
            )
            #expect(packet.tcp.payloadLength == 1448)
            #expect(Array(packet.tcp.payload) == (0..<1448).map { UInt8($0 * 7 % 251) })
            #expect(packet.isChecksumValid)
        }
    }

    @Test("a duplicate ACK reports the out-of-order block 5793:7241 with SACK")
    func sack() throws {
        _ = try withTCPPacket(GoldenSegments.sackAck) { packet in
            #expect(packet.tcp.flags == [.ack])
            #expect(packet.tcp.sequenceNumber == serverISN + 1)
            #expect(packet.tcp.acknowledgmentNumber == clientISN + 4345)
            #expect(packet.tcp.window == 75)
            #expect(packet.tcp.headerLength == 44)
            #expect(packet.tcp.sackBlocks == [SACKBlock(left: clientISN + 5793, right: clientISN + 7241)])
            #expect(
                packet.tcp.options == [
                    .noOperation, .noOperation, .timestamps(value: 4_158_437_300, echoReply: 1_228_401_395),
                    .noOperation, .noOperation, .sack([SACKBlock(left: clientISN + 5793, right: clientISN + 7241)]),
                ]
            )
            #expect(packet.isChecksumValid)
        }
    }

    @Test("the client's FIN takes the sequence number after its 20000 bytes")
    func fin() throws {
        _ = try withTCPPacket(GoldenSegments.finAck) { packet in
            #expect(packet.tcp.flags == [.fin, .ack])
            #expect(packet.tcp.sequenceNumber == clientISN + 20001)
            #expect(packet.tcp.acknowledgmentNumber == serverISN + 1)
            #expect(packet.tcp.payloadLength == 0)
            #expect(packet.tcp.sequenceLength == 1)
            #expect(packet.isChecksumValid)
        }
    }

    @Test("a refused connection is answered by RST-ACK with no options and a zero window")
    func rst() throws {
        _ = try withTCPPacket(GoldenSegments.rstAck) { packet in
            #expect(packet.ip.totalLength == 40)
            #expect(packet.tcp.sourcePort == 5002)
            #expect(packet.tcp.destinationPort == 50260)
            #expect(packet.tcp.flags == [.rst, .ack])
            #expect(packet.tcp.sequenceNumber == SequenceNumber(0))
            #expect(packet.tcp.acknowledgmentNumber == SequenceNumber(143_088_136))
            #expect(packet.tcp.window == 0)
            #expect(packet.tcp.headerLength == 20)
            #expect(packet.tcp.options.isEmpty)
            #expect(packet.isChecksumValid)
        }
    }

    @Test("every golden segment survives parse, then build, byte for byte", arguments: GoldenPacket.all)
    func rebuildIsByteExact(golden: GoldenPacket) throws {
        #expect(try TCPPacketFields(parsing: golden.bytes).build() == golden.bytes)
    }

    @Test("an RST padded to a 60-byte Ethernet frame is accepted only when padding is allowed")
    func ethernetPadding() throws {
        let padded = GoldenSegments.rstAck + [UInt8](repeating: 0, count: 6)
        #expect(validationError(padded) == .totalLengthMismatch(totalLength: 40, bufferLength: 46))
        let (_, length) = try withTCPPacket(padded, allowTrailingBytes: true) { $0.bytes.count }
        #expect(length == 40)
    }
}
