import FTCPWire
import Testing

@testable import FTCPBridge

extension PrimaryScenario {
    /// Feeds a segment of S's kernel as the secondary relays it with `--relay digests`: the
    /// header alone, and a digest of each `pieceLength` bytes of `fields.payload`.
    @discardableResult
    mutating func secondaryDigested(_ fields: TCPPacketFields, pieceLength: Int) throws -> BridgeOutput {
        let digests = stride(from: 0, to: fields.payload.count, by: pieceLength).map { start in
            fields.payload[start..<min(start + pieceLength, fields.payload.count)].withUnsafeBytes {
                PayloadDigest.fnv($0)
            }
        }
        var header = fields
        header.payload = []
        var bytes = try header.build()
        let now = self.now
        return try bytes.withUnsafeMutableBytes {
            try bridge.secondaryDigestedSegment(
                TCPPacket(validating: $0),
                payloadLength: fields.payload.count,
                pieceLength: pieceLength,
                digests: digests,
                now: now
            )
        }
    }
}

/// `--relay digests` at the primary: S relays its new bytes as digests of pieces, P sends its own
/// bytes of a piece once they match. P's ISN is 30 and S's 0, so Δ = −30: P's byte n is at
/// sequence 30 + n, S's and the client's at n.
@Suite("Digest relay")
struct DigestRelayTests {
    typealias S = PrimaryScenario

    func established() throws -> S {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        return scenario
    }

    @Test("S's digests first, then P's bytes: each piece goes out once P holds all of it and it matches")
    func digestsThenBytes() throws {
        var scenario = try established()
        let s = try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)),
            pieceLength: 4
        )
        #expect(s.packetsToClient.isEmpty, "nothing of P's yet")
        // P's bytes 1..6: pieces [1, 5) and half of [5, 9) — only the whole piece goes out.
        let first = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...6)))
        #expect(first.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(first.packetsToClient.map(\.payload) == [numberedBytes(1...4)])
        let rest = try scenario.primary(S.fromServer(.primary, seq: 37, ack: 1001, payload: numberedBytes(7...10)))
        #expect(rest.packetsToClient.flatMap(\.payload) == numberedBytes(5...10))
        #expect(rest.packetsToClient.first?.sequenceNumber == SequenceNumber(5))
        #expect(scenario.status?.statistics.digestsMerged == 3)
        #expect(scenario.status?.phase == "replicating")
    }

    @Test("P's bytes first, then S's digests: the matching pieces go out as the digests come")
    func bytesThenDigests() throws {
        var scenario = try established()
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...8)))
        #expect(p.packetsToClient.isEmpty)
        let s = try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...8)),
            pieceLength: 8
        )
        #expect(s.packetsToClient.map(\.payload) == [numberedBytes(1...8)])
        #expect(s.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1001)])
    }

    @Test("a piece whose digest does not match P's bytes: a divergence; P's bytes go out and P goes on alone")
    func mismatch() throws {
        var scenario = try established()
        var different = numberedBytes(1...8)
        different[5] = 0xEE
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: different),
            pieceLength: 4
        )
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...8)))
        #expect(p.packetsToClient.flatMap(\.payload) == numberedBytes(1...8), "the client gets P's bytes, all of them")
        // The second piece, [5, 9), differs: that is where the divergence is reported.
        #expect(p.events == [.divergence(scenario.key, at: SequenceNumber(5))])
        #expect(scenario.status?.phase == "primary-only")
    }

    @Test("S's FIN in a digested header sits after its bytes: the merged FIN goes out after P's bytes and FIN")
    func finAfterDigestedBytes() throws {
        var scenario = try established()
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.fin, .ack], payload: numberedBytes(1...5)),
            pieceLength: 1000
        )
        let p = try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack], payload: numberedBytes(1...5))
        )
        #expect(p.packetsToClient.flatMap(\.payload) == numberedBytes(1...5))
        #expect(p.packetsToClient.last?.flags.contains(.fin) == true)
        #expect(p.packetsToClient.last.map { $0.sequenceNumber + UInt32($0.payload.count) } == SequenceNumber(6))
    }

    @Test("a whole retransmission of S merges up to the next digest, never past it")
    func bytesStopAtTheNextClaim() throws {
        var scenario = try established()
        // S's first sending of 5..8 came as a digest; its kernel then retransmits 1..6 whole.
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 5, ack: 1001, payload: numberedBytes(5...8)),
            pieceLength: 4
        )
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...6)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...8)))
        #expect(p.packetsToClient.flatMap(\.payload) == numberedBytes(1...8))
        #expect(scenario.status?.statistics.digestsMerged == 1, "5..8 was checked by its digest")
        #expect(scenario.status?.statistics.digestsNotMerged == 0)
    }

    @Test("digests of bytes already sent are a retransmission: counted, nothing goes out twice")
    func digestOfSentBytes() throws {
        var scenario = try established()
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...4)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...4)))
        #expect(p.packetsToClient.flatMap(\.payload) == numberedBytes(1...4))
        let again = try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...4)),
            pieceLength: 4
        )
        #expect(again.packetsToClient.allSatisfy { $0.payload.isEmpty })
        #expect(scenario.status?.statistics.digestsOfSentBytes == 1)
    }

    @Test("P's application dies while S's bytes are only digests: P's replica is lost, S's whole resend goes out")
    func primaryLostWithOnlyDigests() throws {
        var scenario = try established()
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...6)),
            pieceLength: 3
        )
        // P's kernel closes where S has bytes (its application died).
        let fin = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack]))
        #expect(fin.events == [.replicaLost(scenario.key, role: .primary, cause: .closedEarly)])
        #expect(fin.packetsToClient.allSatisfy { $0.payload.isEmpty }, "digests cannot be sent")
        #expect(scenario.status?.phase == "secondary-only")
        // Asked to relay whole (the daemon sends relayWhole), S resends its bytes whole: out they go.
        let resent = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...6)))
        #expect(resent.packetsToClient.flatMap(\.payload) == numberedBytes(1...6))
        // A digest still in flight after that is not merged.
        let late = try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 7, ack: 1001, payload: numberedBytes(7...9)),
            pieceLength: 3
        )
        #expect(late.packetsToClient.isEmpty)
        #expect(scenario.status?.statistics.digestsNotMerged == 1)
    }

    @Test("P's stream ends inside a piece S said by digest (its application died): S goes on alone at once")
    func primaryEndsInsideAPiece() throws {
        var scenario = try established()
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...8)),
            pieceLength: 8
        )
        // P's kernel had 3 of the piece's 8 bytes, then its FIN: the other 5 never come.
        let p = try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack], payload: numberedBytes(1...3))
        )
        #expect(p.events == [.replicaLost(scenario.key, role: .primary, cause: .closedEarly)])
        #expect(scenario.status?.phase == "secondary-only")
        #expect(p.packetsToClient.allSatisfy { $0.payload.isEmpty && !$0.flags.contains(.fin) })
    }

    @Test("S's whole retransmission at the same place as a piece merges as bytes, as far as P has them")
    func wholeBytesBeforeAPieceAtTheSamePlace() throws {
        var scenario = try established()
        try scenario.secondaryDigested(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...8)),
            pieceLength: 8
        )
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...8)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...3)))
        #expect(p.packetsToClient.flatMap(\.payload) == numberedBytes(1...3))
        // Found in the lab: then P's FIN (its application died): S's bytes beyond it win.
        let fin = try scenario.primary(S.fromServer(.primary, seq: 34, ack: 1001, flags: [.fin, .ack]))
        #expect(fin.events == [.replicaLost(scenario.key, role: .primary, cause: .closedEarly)])
        #expect(fin.packetsToClient.flatMap(\.payload) == numberedBytes(4...8))
    }

    @Test("digests that do not cover the bytes, or name no connection, are dropped and counted")
    func malformedDigests() throws {
        var scenario = try established()
        var header = S.fromServer(.secondary, seq: 1, ack: 1001)
        header.payload = []
        var bytes = try header.build()
        let now = scenario.now
        let output = try bytes.withUnsafeMutableBytes {
            try scenario.bridge.secondaryDigestedSegment(
                TCPPacket(validating: $0),
                payloadLength: 10,
                pieceLength: 4,
                digests: [PayloadDigest(high: 1, low: 2)],
                now: now
            )
        }
        #expect(output.packetsToClient.isEmpty)
        #expect(scenario.bridge.counters.droppedDigestsFromSecondary == 1)
    }
}
