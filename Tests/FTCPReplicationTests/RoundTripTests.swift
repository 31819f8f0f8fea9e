import FTCPReplication
import Testing

@Suite("Sealed messages open to what was sealed")
struct RoundTripTests {
    @Test("a segment from the secondary reaches the primary intact")
    func segment() throws {
        var sealer = Fixtures.sealer(.secondary, epoch: 42)
        var opener = Fixtures.opener(.primary)
        let datagram = try sealer.seal(.segment(packet: Fixtures.packet))
        #expect(datagram.count == 28 + Fixtures.packet.count + 32)
        let received = try opener.open(datagram).get()
        #expect(
            received
                == ReceivedReplicationMessage(
                    message: .segment(packet: Fixtures.packet),
                    senderRole: .secondary,
                    epoch: 42,
                    counter: 0
                )
        )
    }

    @Test("a burst of segments from the secondary arrives as one datagram, in order, each packet intact")
    func segments() throws {
        var sealer = Fixtures.sealer(.secondary, epoch: 42)
        var opener = Fixtures.opener(.primary)
        let packets = [Fixtures.packet, [0x45, 1, 2], Array(repeating: 7, count: 1500)]
        let datagram = try sealer.seal(.segments(packets: packets))
        let cost = packets.map { ReplicationSealer.segmentsCost(ofPacket: $0.count) }.reduce(0, +)
        #expect(datagram.count == ReplicationSealer.segmentsDatagramLength(packetCost: cost))
        #expect(datagram.count == 28 + 2 + packets.map { 2 + $0.count }.reduce(0, +) + 32)
        let received = try opener.open(datagram).get()
        #expect(received.message == .segments(packets: packets))
        #expect(received.counter == 0)
    }

    @Test("segments: an empty burst, an empty packet or more than fits is refused at seal time, and no counter is used")
    func segmentsSealErrors() throws {
        var sealer = Fixtures.sealer(.secondary)
        #expect(throws: ReplicationError.self) { try sealer.seal(.segments(packets: [])) }
        #expect(throws: ReplicationError.self) { try sealer.seal(.segments(packets: [Fixtures.packet, []])) }
        #expect(throws: ReplicationError.self) {
            try sealer.seal(.segments(packets: Array(repeating: Array(repeating: 1, count: 1500), count: 44)))
        }
        var primary = Fixtures.sealer(.primary)
        #expect(throws: ReplicationError.self) { try primary.seal(.segments(packets: [Fixtures.packet])) }
        #expect(sealer.nextCounter == 0 && primary.nextCounter == 0)
    }

    @Test(
        "released connections from the primary reach the secondary, 1 and 1,024 of them; 0, 1,025 or from a secondary are refused"
    )
    func released() throws {
        var sealer = Fixtures.sealer(.primary, epoch: 9)
        var opener = Fixtures.opener(.secondary)
        let one = [ReplicatedConnectionID(clientAddress: 0x0A50_000A, clientPort: 40_000, serverPort: 9999)]
        let datagram = try sealer.seal(.released(connections: one))
        #expect(datagram.count == 28 + 2 + 8 + 32)
        #expect(try opener.open(datagram).get().message == .released(connections: one))
        let many = (0..<1024).map {
            ReplicatedConnectionID(clientAddress: UInt32($0) << 8, clientPort: UInt16($0), serverPort: 21)
        }
        #expect(
            try opener.open(try sealer.seal(.released(connections: many))).get().message == .released(connections: many)
        )
        #expect(throws: ReplicationError.self) { try sealer.seal(.released(connections: [])) }
        #expect(throws: ReplicationError.self) { try sealer.seal(.released(connections: many + one)) }
        var secondary = Fixtures.sealer(.secondary)
        #expect(throws: ReplicationError.self) { try secondary.seal(.released(connections: one)) }
    }

    @Test("an inject message from the primary reaches the secondary intact")
    func inject() throws {
        var sealer = Fixtures.sealer(.primary, epoch: 7)
        var opener = Fixtures.opener(.secondary)
        let received = try opener.open(try sealer.seal(.inject(packet: Fixtures.packet))).get()
        #expect(received.message == .inject(packet: Fixtures.packet))
        #expect(received.senderRole == .primary)
        #expect(received.epoch == 7)
    }

    @Test("heartbeats travel both ways", arguments: ReplicationRole.allCases)
    func heartbeat(sender: ReplicationRole) throws {
        var sealer = Fixtures.sealer(sender)
        var opener = Fixtures.opener(sender.peer)
        let received = try opener.open(try sealer.seal(.heartbeat(Fixtures.heartbeat))).get()
        #expect(received.message == .heartbeat(Fixtures.heartbeat))
    }

    @Test(
        "resend requests travel both ways; a count of 0 or over 1024 is refused at seal time",
        arguments: ReplicationRole.allCases
    )
    func resendRequest(sender: ReplicationRole) throws {
        var sealer = Fixtures.sealer(sender)
        var opener = Fixtures.opener(sender.peer)
        let received = try opener.open(try sealer.seal(.resendRequest(firstCounter: 41, count: 3))).get()
        #expect(received.message == .resendRequest(firstCounter: 41, count: 3))
        #expect(throws: ReplicationError.resendCountOutOfRange(count: 0, limit: 1024)) {
            try sealer.seal(.resendRequest(firstCounter: 1, count: 0))
        }
        #expect(throws: ReplicationError.resendCountOutOfRange(count: 1025, limit: 1024)) {
            try sealer.seal(.resendRequest(firstCounter: 1, count: 1025))
        }
    }

    @Test("packets of the smallest and largest sizes")
    func packetSizeLimits() throws {
        var sealer = Fixtures.sealer(.secondary)
        var opener = Fixtures.opener(.primary)
        for size in [1, 1_500, 65_000] {
            let packet = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            let datagram = try sealer.seal(.segment(packet: packet))
            #expect(datagram.count <= ReplicationSealer.maximumDatagramLength)
            #expect(try opener.open(datagram).get().message == .segment(packet: packet))
        }
        #expect(ReplicationSealer.maximumDatagramLength <= 65_507, "must fit one IPv4 UDP datagram")
    }

    @Test("the documented wire layout, byte for byte")
    func wireLayout() throws {
        var sealer = Fixtures.sealer(.secondary, epoch: 0x1122_3344_5566_7788)
        _ = try sealer.seal(.heartbeat(Fixtures.heartbeat))
        let datagram = try sealer.seal(.heartbeat(Fixtures.heartbeat))
        let expected = HandmadeDatagram(
            type: 3,
            role: 2,
            epoch: 0x1122_3344_5566_7788,
            counter: 1,
            body: [3] + heartbeatBody.dropFirst() + [0, 0, 0, 0, 0, 0] + [0]
        ).bytes()
        #expect(datagram == expected)
        #expect(Array(datagram[0..<8]) == [0x46, 0x54, 0x43, 0x52, 1, 3, 2, 0])
    }

    @Test("the counter starts at 0 and increases by one per datagram")
    func counters() throws {
        var sealer = Fixtures.sealer(.primary)
        var opener = Fixtures.opener(.secondary)
        for expected in UInt64(0)..<5 {
            #expect(sealer.nextCounter == expected)
            let received = try opener.open(try sealer.seal(.heartbeat(Fixtures.heartbeat))).get()
            #expect(received.counter == expected)
        }
        #expect(opener.statistics.accepted == 5)
        #expect(opener.statistics.dropped == 0)
    }

    @Test("a datagram opens from an array slice, an unsafe buffer, and a non-contiguous collection")
    func inputForms() throws {
        var sealer = Fixtures.sealer(.primary)
        var opener = Fixtures.opener(.secondary)
        let first = try sealer.seal(.inject(packet: Fixtures.packet))
        let padded = [0xAA] + first + [0xBB]
        #expect(opener.open(padded[1..<(padded.count - 1)]).success != nil)

        let second = try sealer.seal(.inject(packet: Fixtures.packet))
        #expect(second.withUnsafeBytes { opener.open($0) }.success != nil)

        let third = try sealer.seal(.inject(packet: Fixtures.packet))
        let nonContiguous = third.lazy.map { $0 }
        #expect(opener.open(nonContiguous).success?.counter == 2)
    }

    @Test("a heartbeat of a later version with appended fields opens as its known fields")
    func laterHeartbeatVersion() throws {
        var opener = Fixtures.opener(.primary)
        var body = heartbeatBody
        body[0] = 4
        body += [2, 0, 0, 0xaa, 0xbb, 0xcc] + [0b1000_0001] + [9, 9, 9, 9]
        let received = try opener.open(HandmadeDatagram(body: body).bytes()).get()
        var expected = Fixtures.heartbeat
        expected.hardwareAddress = [2, 0, 0, 0xaa, 0xbb, 0xcc]
        expected.capabilities = ReplicationCapabilities(rawValue: 0b1000_0001)
        #expect(received.message == .heartbeat(expected))
        #expect(expected.capabilities.contains(.digests))
        #expect(expected.capabilities.description == "digests, unknown 0x80")
    }

    @Test("a heartbeat is version 3: the hardware address (zeros when the sender names none) and the capabilities")
    func heartbeatVersion3() throws {
        var sealer = Fixtures.sealer(.primary)
        var opener = Fixtures.opener(.secondary)
        var heartbeat = Fixtures.heartbeat
        heartbeat.hardwareAddress = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        heartbeat.capabilities = .thisBuild
        let datagram = try sealer.seal(.heartbeat(heartbeat))
        #expect(datagram[28] == 3 && datagram.count == 28 + 29 + 32)
        #expect(Array(datagram[(28 + 22)..<(28 + 29)]) == [0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 1])
        #expect(try opener.open(datagram).get().message == .heartbeat(heartbeat))
        // No address, or one that is not six bytes: zeros on the wire, none when opened.
        heartbeat.hardwareAddress = [1, 2, 3]
        let withoutAddress = try sealer.seal(.heartbeat(heartbeat))
        #expect(Array(withoutAddress[(28 + 22)..<(28 + 28)]) == [0, 0, 0, 0, 0, 0])
        heartbeat.hardwareAddress = nil
        #expect(try opener.open(withoutAddress).get().message == .heartbeat(heartbeat))
    }

    @Test(
        "a heartbeat of an older release (version 1, or 2 with an address) opens with no capabilities",
        arguments: [
            (heartbeatBody, nil),
            ([2] + heartbeatBody.dropFirst() + [0x02, 0, 0, 0, 0, 0x07], [0x02, 0, 0, 0, 0, 0x07]),
        ] as [([UInt8], [UInt8]?)]
    )
    func olderRelease(body: [UInt8], hardwareAddress: [UInt8]?) throws {
        var opener = Fixtures.opener(.secondary)
        let datagram = HandmadeDatagram(role: ReplicationRole.primary.rawValue, body: body).bytes()
        var expected = Fixtures.heartbeat
        expected.hardwareAddress = hardwareAddress
        let received = try opener.open(datagram).get()
        #expect(received.message == .heartbeat(expected))
        guard case let .heartbeat(heartbeat) = received.message else { return }
        #expect(heartbeat.capabilities.isEmpty, "an older release reads no digests: it gets bytes")
    }

    @Test("what a release before capabilities reads from this build's heartbeat: the first 28 bytes, as version 2")
    func readByAnOlderRelease() throws {
        var sealer = Fixtures.sealer(.primary)
        var heartbeat = Fixtures.heartbeat
        heartbeat.hardwareAddress = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        heartbeat.capabilities = .thisBuild
        let body = Array(try sealer.seal(.heartbeat(heartbeat)).dropFirst(28).dropLast(32))
        // That release took any version above 2 with at least 28 bytes and read its known fields.
        #expect(body[0] > 2 && body.count >= 28)
        #expect(Array(body[1..<22]) == Array(heartbeatBody[1...]))
        #expect(Array(body[22..<28]) == heartbeat.hardwareAddress)
    }
}

@Suite("Digests and relay-whole messages (--relay digests)")
struct DigestMessageTests {
    static func segment(payload: UInt32, piece: UInt16) -> DigestedSegment {
        let pieces = DigestedSegment.pieceCount(payloadLength: payload, pieceLength: piece)
        return DigestedSegment(
            header: Fixtures.packet,
            payloadLength: payload,
            pieceLength: piece,
            digests: (0..<pieces * DigestedSegment.digestLength).map { UInt8(truncatingIfNeeded: $0) }
        )
    }

    @Test("digested segments from the secondary reach the primary, each with one 16-byte digest per piece")
    func digests() throws {
        var sealer = Fixtures.sealer(.secondary, epoch: 3)
        var opener = Fixtures.opener(.primary)
        // 65,535 bytes in pieces of 1,420: 47 digests; 10 bytes in one piece.
        let segments = [Self.segment(payload: 65_535, piece: 1_420), Self.segment(payload: 10, piece: 1_420)]
        #expect(segments[0].digests.count == 47 * 16)
        let datagram = try sealer.seal(.digests(segments: segments))
        #expect(datagram.count == ReplicationSealer.digestsDatagramLength(segments))
        #expect(
            datagram.count == 28 + 2 + segments.map { 2 + $0.header.count + 6 + $0.digests.count }.reduce(0, +) + 32
        )
        #expect(try opener.open(datagram).get().message == .digests(segments: segments))
    }

    @Test("a digested segment whose digests do not cover its bytes, or with no bytes, is refused at seal time")
    func digestsSealErrors() throws {
        var sealer = Fixtures.sealer(.secondary)
        var short = Self.segment(payload: 3_000, piece: 1_000)
        short.digests.removeLast()
        #expect(throws: ReplicationError.self) { try sealer.seal(.digests(segments: [short])) }
        #expect(throws: ReplicationError.self) { try sealer.seal(.digests(segments: [])) }
        var empty = Self.segment(payload: 1, piece: 1)
        empty.payloadLength = 0
        #expect(throws: ReplicationError.self) { try sealer.seal(.digests(segments: [empty])) }
        var primary = Fixtures.sealer(.primary)
        #expect(throws: ReplicationError.self) {
            try primary.seal(.digests(segments: [Self.segment(payload: 1, piece: 1)]))
        }
        #expect(sealer.nextCounter == 0 && primary.nextCounter == 0)
    }

    @Test(
        "a digests body whose lengths do not add up, or whose digests are short of its pieces, is dropped",
        arguments: [
            [0, 0], [0, 1, 0, 1, 0x45, 0, 0, 0, 1, 0, 1] + Array(repeating: 1, count: 15),
            [0, 1, 0, 1, 0x45, 0, 0, 0, 1, 0, 0] + Array(repeating: 1, count: 16),
            [0, 1, 0, 1, 0x45, 0, 0, 0, 1, 0, 1] + Array(repeating: 1, count: 17),
            [0, 2, 0, 1, 0x45, 0, 0, 0, 1, 0, 1] + Array(repeating: 1, count: 16),
            // A payload length near 2³² (its piece count overflowed 32 bits: found by the fuzzer).
            [0, 1, 0, 1, 0x45, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1] + Array(repeating: 1, count: 16),
        ] as [[UInt8]]
    )
    func malformedDigests(body: [UInt8]) {
        var opener = Fixtures.opener(.primary)
        let datagram = HandmadeDatagram(type: 7, role: ReplicationRole.secondary.rawValue, body: body)
        #expect(opener.open(datagram.bytes()).failure == .invalidBody(.badDigests(length: body.count)))
    }

    @Test("relay-whole requests go from the primary to the secondary only")
    func relayWhole() throws {
        var sealer = Fixtures.sealer(.primary)
        var opener = Fixtures.opener(.secondary)
        let one = [ReplicatedConnectionID(clientAddress: 0x0A50_000A, clientPort: 40_000, serverPort: 9999)]
        #expect(
            try opener.open(try sealer.seal(.relayWhole(connections: one))).get().message
                == .relayWhole(connections: one)
        )
        var secondary = Fixtures.sealer(.secondary)
        #expect(throws: ReplicationError.self) { try secondary.seal(.relayWhole(connections: one)) }
    }
}
