import FTCPReplication
import Testing

/// Anyone on the LAN can send the opener anything: every bad datagram must be dropped, counted,
/// and never crash.
@Suite("Hostile datagrams are dropped")
struct HostileInputTests {
    @Test("a flipped bit anywhere is dropped as malformed or bad MAC", arguments: ReplicationRole.allCases)
    func everyBitFlip(sender: ReplicationRole) throws {
        var sealer = Fixtures.sealer(sender)
        let message: ReplicationMessage =
            sender == .secondary
            ? .segment(packet: [0x45, 0, 0, 20]) : .heartbeat(Fixtures.heartbeat)
        let datagram = try sealer.seal(message)
        var opener = Fixtures.opener(sender.peer)
        var flips: UInt64 = 0
        for index in datagram.indices {
            for bit in 0..<8 {
                var corrupted = datagram
                corrupted[index] ^= 1 << bit
                flips += 1
                switch opener.open(corrupted).failure {
                case .badMAC, .malformed:
                    break
                case let other:
                    Issue.record("flipping bit \(bit) of byte \(index) gave \(String(describing: other))")
                }
            }
        }
        #expect(opener.statistics.accepted == 0)
        #expect(opener.statistics.droppedBadMAC + opener.statistics.droppedMalformed == flips)
        // Only bits in the fixed header can be malformed; the MAC catches all the rest.
        #expect(opener.statistics.droppedBadMAC > 0 && opener.statistics.droppedMalformed > 0)
        // The original still opens: the flips changed no state.
        #expect(opener.open(datagram).success?.message == message)
    }

    @Test("every truncation and extension is dropped as malformed")
    func everyTruncation() throws {
        var sealer = Fixtures.sealer(.secondary)
        let datagram = try sealer.seal(.segment(packet: Fixtures.packet))
        var opener = Fixtures.opener(.primary)
        for length in 0..<datagram.count {
            let reason = opener.open(datagram[0..<length]).failure
            #expect(
                reason == .malformed(.badLength(length)) || isBodyLengthMismatch(reason),
                "prefix of \(length) bytes gave \(String(describing: reason))"
            )
        }
        #expect(isBodyLengthMismatch(opener.open(datagram + [0]).failure))
        #expect(opener.statistics.droppedMalformed == UInt64(datagram.count + 1))
        #expect(opener.open(datagram).success != nil)
    }

    @Test("10,000 random datagrams are all dropped and the counters add up")
    func randomGarbage() {
        var generator = SeededGenerator(seed: 2003)
        var opener = Fixtures.opener(.primary)
        for round in 0..<10_000 {
            var datagram = generator.bytes(Int.random(in: 0...200, using: &generator))
            // Make a quarter of them get past the cheap header checks, to exercise the MAC.
            if round % 4 == 0 {
                let body = generator.bytes(Int.random(in: 0...64, using: &generator))
                datagram = HandmadeDatagram(
                    type: UInt8.random(in: 0...4, using: &generator),
                    role: UInt8.random(in: 1...2, using: &generator),
                    epoch: generator.next(),
                    counter: generator.next(),
                    body: body
                ).bytes(key: generator.bytes(32))
            }
            #expect(opener.open(datagram).success == nil)
        }
        let statistics = opener.statistics
        #expect(statistics.accepted == 0)
        #expect(statistics.received == 10_000)
        #expect(statistics.droppedMalformed + statistics.droppedBadMAC == 10_000)
        #expect(statistics.droppedBadMAC == 2_500)
    }

    @Test("a datagram sealed with another key is dropped as bad MAC")
    func wrongKey() throws {
        var sealer = Fixtures.sealer(.secondary, key: Fixtures.otherKey)
        var opener = Fixtures.opener(.primary)
        for message: ReplicationMessage in [.segment(packet: Fixtures.packet), .heartbeat(Fixtures.heartbeat)] {
            #expect(opener.open(try sealer.seal(message)).failure == .badMAC)
        }
        #expect(opener.statistics.droppedBadMAC == 2)
        #expect(opener.peerEpoch == nil)
    }

    @Test("a datagram claiming the receiver's own role is a reflection", arguments: ReplicationRole.allCases)
    func reflection(role: ReplicationRole) throws {
        var sealer = Fixtures.sealer(role)
        var opener = Fixtures.opener(role)
        let datagram = try sealer.seal(.heartbeat(Fixtures.heartbeat))
        #expect(opener.open(datagram).failure == .wrongRole(role))
        #expect(opener.statistics.droppedWrongRole == 1)
        #expect(opener.peerEpoch == nil, "a reflection must not set the peer's epoch")
    }

    @Test(
        "header defects are named",
        arguments: [
            (HandmadeDatagram(magic: [0x46, 0x54, 0x43, 0x53]), ReplicationDropReason.malformed(.badMagic)),
            (
                HandmadeDatagram(version: 2, body: [1, 2, 3], declaredLength: 2),
                .malformed(.bodyLengthMismatch(declared: 2, datagramLength: 63))
            ),
            (HandmadeDatagram(reserved: 1), .malformed(.reservedNotZero(1))),
            (HandmadeDatagram(role: 0), .malformed(.unknownRole(0))),
            (HandmadeDatagram(role: 3), .malformed(.unknownRole(3))),
            (
                HandmadeDatagram(body: [1, 2, 3], declaredLength: 2),
                .malformed(.bodyLengthMismatch(declared: 2, datagramLength: 63))
            ),
            (
                HandmadeDatagram(body: [1, 2, 3], declaredLength: .max),
                .malformed(.bodyLengthMismatch(declared: .max, datagramLength: 63))
            ),
        ]
    )
    func headerDefects(datagram: HandmadeDatagram, expected: ReplicationDropReason) {
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(datagram.bytes()).failure == expected)
        #expect(opener.statistics.droppedMalformed == 1)
    }

    @Test("a peer of another format version is told apart from noise", arguments: [UInt8(0), 2, 255])
    func otherFormatVersion(version: UInt8) {
        var opener = Fixtures.opener(.primary)
        // Authentic: whatever a later version puts in the header and body, the envelope holds.
        let authentic = HandmadeDatagram(version: version, type: 9, role: 7, reserved: 5, body: [1, 2, 3])
        #expect(opener.open(authentic.bytes()).failure == .incompatibleVersion(peer: version, local: 1))
        #expect(opener.incompatiblePeerVersion == version)
        #expect(opener.statistics.droppedIncompatibleVersion == 1)
        #expect(opener.peerEpoch == nil, "a datagram this node cannot read must change no replay state")
        // Under another key it is noise, and says nothing about the peer.
        var other = Fixtures.opener(.primary)
        #expect(other.open(authentic.bytes(key: Array(repeating: 7, count: 32))).failure == .badMAC)
        #expect(other.incompatiblePeerVersion == nil)
        // A datagram of this node's version is still read afterwards.
        let current = HandmadeDatagram(body: heartbeatBody)
        #expect(opener.open(current.bytes()).success?.message == .heartbeat(Fixtures.heartbeat))
    }

    @Test(
        "authentic datagrams with bodies the receiver cannot use are dropped",
        arguments: [
            (HandmadeDatagram(type: 0, body: heartbeatBody), ReplicationDropReason.invalidBody(.unknownMessageType(0))),
            (HandmadeDatagram(type: 9, body: heartbeatBody), .invalidBody(.unknownMessageType(9))),
            // A released message only ever comes from the primary.
            (
                HandmadeDatagram(type: 6, body: [0, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
                .invalidBody(.wrongDirection(kind: .released, sender: .secondary))
            ),
            // Segments: no packet, an empty packet, a length past the end, bytes left over.
            (HandmadeDatagram(type: 5, body: [0, 0]), .invalidBody(.badSegments(length: 2))),
            (HandmadeDatagram(type: 5, body: [0]), .invalidBody(.badSegments(length: 1))),
            (HandmadeDatagram(type: 5, body: [0, 1, 0, 0]), .invalidBody(.badSegments(length: 4))),
            (HandmadeDatagram(type: 5, body: [0, 1, 0, 3, 0x45, 0]), .invalidBody(.badSegments(length: 6))),
            (HandmadeDatagram(type: 5, body: [0, 2, 0, 1, 0x45]), .invalidBody(.badSegments(length: 5))),
            (HandmadeDatagram(type: 5, body: [0, 1, 0, 1, 0x45, 0]), .invalidBody(.badSegments(length: 6))),
            (
                HandmadeDatagram(type: 5, body: [0xff, 0xff] + Array(repeating: 0, count: 20)),
                .invalidBody(.badSegments(length: 22))
            ),
            (HandmadeDatagram(type: 4, body: heartbeatBody), .invalidBody(.badResendRequest(length: 22))),
            (
                HandmadeDatagram(type: 4, body: [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
                .invalidBody(.badResendRequest(length: 12))
            ),
            (HandmadeDatagram(type: 1, body: []), .invalidBody(.emptyPacket)),
            (HandmadeDatagram(type: 3, body: []), .invalidBody(.badHeartbeat(version: 0, length: 0))),
            (
                HandmadeDatagram(type: 3, body: Array(heartbeatBody.dropLast())),
                .invalidBody(.badHeartbeat(version: 1, length: 21))
            ),
            (HandmadeDatagram(type: 3, body: heartbeatBody + [0]), .invalidBody(.badHeartbeat(version: 1, length: 23))),
            (
                HandmadeDatagram(type: 3, body: [0] + heartbeatBody.dropFirst()),
                .invalidBody(.badHeartbeat(version: 0, length: 22))
            ),
            (
                HandmadeDatagram(type: 3, body: [2] + heartbeatBody.dropFirst(2)),
                .invalidBody(.badHeartbeat(version: 2, length: 21))
            ),
            // Version 2 carries the sender's hardware address: 28 bytes exactly.
            (
                HandmadeDatagram(type: 3, body: [2] + heartbeatBody.dropFirst()),
                .invalidBody(.badHeartbeat(version: 2, length: 22))
            ),
            (
                HandmadeDatagram(type: 3, body: [2] + heartbeatBody.dropFirst() + [1, 2, 3, 4, 5, 6, 7]),
                .invalidBody(.badHeartbeat(version: 2, length: 29))
            ),
            // Version 3 appends the capabilities: 29 bytes exactly; later ones at least 29.
            (
                HandmadeDatagram(type: 3, body: [3] + heartbeatBody.dropFirst() + [1, 2, 3, 4, 5]),
                .invalidBody(.badHeartbeat(version: 3, length: 27))
            ),
            (
                HandmadeDatagram(type: 3, body: [3] + heartbeatBody.dropFirst() + [1, 2, 3, 4, 5, 6]),
                .invalidBody(.badHeartbeat(version: 3, length: 28))
            ),
            (
                HandmadeDatagram(type: 3, body: [3] + heartbeatBody.dropFirst() + [1, 2, 3, 4, 5, 6, 1, 0]),
                .invalidBody(.badHeartbeat(version: 3, length: 30))
            ),
            (
                HandmadeDatagram(type: 3, body: [4] + heartbeatBody.dropFirst() + [1, 2, 3, 4, 5, 6]),
                .invalidBody(.badHeartbeat(version: 4, length: 28))
            ),
            // An inject message only ever comes from the primary.
            (
                HandmadeDatagram(type: 2, body: Fixtures.packet),
                .invalidBody(.wrongDirection(kind: .inject, sender: .secondary))
            ),
        ]
    )
    func invalidBodies(datagram: HandmadeDatagram, expected: ReplicationDropReason) {
        var opener = Fixtures.opener(.primary)
        #expect(opener.open(datagram.bytes()).failure == expected)
        #expect(opener.statistics.droppedInvalidBody == 1)
        #expect(opener.peerEpoch == nil, "an unusable datagram must not change the replay state")
    }

    @Test(
        "released messages that name no connection, or whose length is not 2 + 8 × count, are dropped by the secondary",
        arguments: [
            [0, 0], [0, 1, 1, 2, 3], [0, 1] + Array(repeating: 1, count: 9),
            [0x04, 0x01] + Array(repeating: 1, count: 8 * 1025),
        ] as [[UInt8]]
    )
    func malformedReleased(body: [UInt8]) {
        var opener = Fixtures.opener(.secondary)
        let datagram = HandmadeDatagram(type: 6, role: ReplicationRole.primary.rawValue, body: body)
        #expect(opener.open(datagram.bytes()).failure == .invalidBody(.badReleased(length: body.count)))
    }

    @Test("segments only ever come from the secondary: the secondary drops an authentic one from the primary")
    func segmentsFromThePrimary() {
        var opener = Fixtures.opener(.secondary)
        let datagram = HandmadeDatagram(type: 5, role: ReplicationRole.primary.rawValue, body: [0, 1, 0, 1, 0x45])
        #expect(
            opener.open(datagram.bytes()).failure == .invalidBody(.wrongDirection(kind: .segments, sender: .primary))
        )
        #expect(opener.statistics.droppedInvalidBody == 1)
    }

    @Test("an oversized datagram is refused before it is copied")
    func oversizedDatagram() {
        var opener = Fixtures.opener(.primary)
        let huge = repeatElement(UInt8(0), count: 70_000)
        #expect(opener.open(huge).failure == .malformed(.badLength(70_000)))
        #expect(Array(huge).withUnsafeBytes { opener.open($0) }.failure == .malformed(.badLength(70_000)))
        #expect(opener.statistics.droppedMalformed == 2)
    }

    func isBodyLengthMismatch(_ reason: ReplicationDropReason?) -> Bool {
        if case .malformed(.bodyLengthMismatch) = reason { return true }
        return false
    }
}
