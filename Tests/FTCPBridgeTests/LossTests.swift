import FTCPWire
import Testing

@testable import FTCPBridge

/// The four places a segment can be lost (paper §4), with Δ = 30.
@Suite("Loss of messages (paper §4)")
struct LossTests {
    typealias S = PrimaryScenario

    func established() throws -> S {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        return scenario
    }

    @Test("the primary misses a client segment: no ACK for it reaches the client until P has it")
    func primaryMissesClientSegment() throws {
        var scenario = try established()
        // Client bytes 1001–1100: S acknowledges them, P does not.
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1101, window: 1000))
        #expect(s.packetsToClient.isEmpty)
        // The client retransmits; now P acknowledges too.
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 1000))
        #expect(p.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1101)])
    }

    @Test("the primary misses the client's ACK and retransmits k: the bridge forwards k at once")
    func primaryRetransmits() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        let again = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        #expect(again.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(again.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
    }

    @Test("the secondary misses a client segment: the smaller ACK is S's, and S's retransmission goes out at once")
    func secondaryMissesClientSegment() throws {
        var scenario = try established()
        let p = try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1101, window: 1000, payload: numberedBytes(1...10))
        )
        #expect(p.packetsToClient.isEmpty)
        let s = try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1001, window: 1000, payload: numberedBytes(1...10))
        )
        #expect(s.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1001)])
        let retransmission = try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1101, window: 1000, payload: numberedBytes(1...10))
        )
        #expect(retransmission.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
        #expect(retransmission.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1101)])
    }

    @Test("a client segment lost before both servers: both retransmit k, and the client gets it twice")
    func lostBeforeBoth() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        #expect(p.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(s.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
    }

    @Test("the secondary's segment is lost on the way to the primary; S's retransmission arrives first")
    func secondarySegmentLostThenSecondaryFirst() throws {
        var scenario = try established()
        // P's copy of m (1–10) waits; S's copy never arrives.
        #expect(
            try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
                .packetsToClient.isEmpty
        )
        // S retransmits m: it matches P's queue and goes out.
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        #expect(s.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
        // P's retransmission comes later: already sent, so forwarded again.
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        #expect(p.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
    }

    @Test("the secondary's segment is lost on the way to the primary; P's retransmission arrives first")
    func secondarySegmentLostThenPrimaryFirst() throws {
        var scenario = try established()
        #expect(
            try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
                .packetsToClient.isEmpty
        )
        // P's retransmission finds m in P's queue: the second copy is discarded, nothing goes out.
        #expect(
            try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
                .packetsToClient.isEmpty
        )
        #expect(scenario.status?.queuedPrimaryBytes == 10)
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        #expect(s.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
    }

    @Test("S's later segment arrives before the lost earlier one: the hole waits, then both go out in order")
    func secondaryReordered() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...20)))
        let early = try scenario.secondary(
            S.fromServer(.secondary, seq: 11, ack: 1001, payload: numberedBytes(11...20))
        )
        #expect(early.packetsToClient.flatMap(\.payload).isEmpty, "11–20 must wait for 1–10")
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        #expect(out.packetsToClient.flatMap(\.payload) == numberedBytes(1...20))
    }

    @Test("the merged segment is lost on the way to the client: both retransmit, the client gets two copies")
    func mergedSegmentLost() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...10)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        #expect(
            (s.packetsToClient + p.packetsToClient).map(\.sequenceNumber) == [SequenceNumber(1), SequenceNumber(1)]
        )
    }
}
