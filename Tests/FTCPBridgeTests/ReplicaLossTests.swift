import FTCPWire
import Testing

@testable import FTCPBridge

/// One server's application dies (or is not running) while the other's serves: the
/// connection goes on from the live one, and no close or reset the client did not cause
/// reaches it. Client ISN 1000, primary ISN 30, secondary ISN 0 (Δ = 30), as in the
/// paper's figures: P's byte n is at 30 + n, S's at n.
@Suite("A server's application dies: the other serves alone")
struct ReplicaLossTests {
    typealias S = PrimaryScenario

    func established() throws -> S {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        return scenario
    }

    @Test("the secondary refuses the SYN before the primary answers: nothing waits, the primary's SYN-ACK passes")
    func secondaryRefusesFirst() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        #expect(out.packetsToClient.isEmpty)
        #expect(scenario.status == nil)
        #expect(
            try scenario.primaryVerdict(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack])) == .pass
        )
        #expect(scenario.bridge.counters.refusedBySecondary == 1)
    }

    @Test("both kernels refuse the SYN: the client gets one RST, as from one server")
    func bothRefuse() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        let p = try scenario.primary(S.fromServer(.primary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        #expect(p.packetsToClient.isEmpty)
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        #expect(s.packetsToClient.map(\.flags) == [[.rst, .ack]])
        #expect(s.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1001)])
        #expect(scenario.status == nil)
    }

    @Test("the primary refuses the SYN (its application is gone): the secondary's SYN-ACK serves the client")
    func primaryRefuses() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1460)]))
        let p = try scenario.primary(S.fromServer(.primary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        #expect(p.packetsToClient.isEmpty)
        #expect(p.events == [.replicaLost(scenario.key, role: .primary, cause: .reset)])
        let s = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 200,
                ack: 1001,
                flags: [.syn, .ack],
                options: [.maximumSegmentSize(1400)]
            )
        )
        #expect(s.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(200)])
        #expect(s.packetsToClient.map(\.flags) == [[.syn, .ack]])
        #expect(scenario.status?.phase == "secondary-only")
        // The client's ACK is kept from the primary's kernel, which would only reset it.
        let (toPrimary, _) = try scenario.client(S.fromClient(seq: 1001, ack: 201, payload: [7]))
        #expect(toPrimary == nil)
        // S's data goes out as it is, in its own (the client's) space.
        let data = try scenario.secondary(S.fromServer(.secondary, seq: 201, ack: 1002, payload: numberedBytes(1...3)))
        #expect(data.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(201)])
        #expect(data.packetsToClient.map(\.payload) == [numberedBytes(1...3)])
        #expect(data.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1002)])
    }

    @Test("a connection S served alone closes: a late segment of P's kernel, which refused it, reaches no one")
    func primaryRefusedThenClosed() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        try scenario.primary(S.fromServer(.primary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        try scenario.secondary(S.fromServer(.secondary, seq: 200, ack: 1001, flags: [.syn, .ack]))
        try scenario.client(S.fromClient(seq: 1001, ack: 201))
        // S closes, the client closes, each acknowledges the other's FIN.
        try scenario.secondary(S.fromServer(.secondary, seq: 201, ack: 1001, flags: [.fin, .ack]))
        try scenario.client(S.fromClient(seq: 1001, ack: 202, flags: [.fin, .ack]))
        let last = try scenario.secondary(S.fromServer(.secondary, seq: 202, ack: 1002))
        #expect(last.events == [.connectionClosed(scenario.key, reason: .finished)])
        // Found by the bridge-cores fuzzer: P's bytes went out with Δ = 0, as if they were S's.
        let late = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...5)))
        #expect(late.packetsToClient.isEmpty)
        #expect(scenario.status?.statistics.droppedFromPrimaryAfterReplicaLost == 1)
        // S's own late segments still go out as they are.
        let again = try scenario.secondary(S.fromServer(.secondary, seq: 201, ack: 1002, flags: [.fin, .ack]))
        #expect(again.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(201)])
    }

    @Test("the client resets before S answers: S's late SYN-ACK and P's bytes reach no one")
    func closedInTheHandshake() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        try scenario.primary(S.fromServer(.primary, seq: 30, ack: 1001, flags: [.syn, .ack]))
        let reset = try scenario.client(S.fromClient(seq: 1001, flags: [.rst]))
        #expect(reset.output.events == [.connectionClosed(scenario.key, reason: .resetByClient)])
        // Found by the bridge-cores fuzzer: the late SYN-ACK completed a merged handshake for a
        // closed connection, and P's bytes then went out untranslated (Δ was never known).
        let synACK = try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack]))
        #expect(synACK.packetsToClient.isEmpty)
        let data = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...4)))
        #expect(data.packetsToClient.isEmpty)
        #expect(scenario.status?.phase == "closed")
    }

    @Test("the primary's kernel resets an established connection: what S holds goes out, then S alone")
    func primaryResetsEstablished() throws {
        var scenario = try established()
        // S is ahead: bytes 1..5 wait for P's copy.
        let held = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...5)))
        #expect(held.packetsToClient.isEmpty)
        let reset = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, flags: [.rst, .ack]))
        #expect(reset.events == [.replicaLost(scenario.key, role: .primary, cause: .reset)])
        #expect(reset.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(reset.packetsToClient.map(\.payload) == [numberedBytes(1...5)])
        #expect(!reset.packetsToClient.contains { $0.flags.contains(.rst) }, "no reset reaches the client")
        let more = try scenario.secondary(S.fromServer(.secondary, seq: 6, ack: 1001, payload: numberedBytes(6...8)))
        #expect(more.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(6)])
        // P's kernel is out of it: its segments are consumed and nothing of them goes out.
        let late = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...5)))
        #expect(late.packetsToClient.isEmpty)
        #expect(scenario.status?.statistics.droppedFromPrimaryAfterReplicaLost == 1)
    }

    @Test(
        "S alone resends a segment with an older ACK and a smaller window: the client is still offered the edge it had (never shrunk)"
    )
    func secondaryAloneNeverShrinksTheWindow() throws {
        var scenario = try established()
        try scenario.client(S.fromClient(seq: 1001, ack: 1, payload: Array(repeating: 5, count: 100)))
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 1000))
        let merged = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1101, window: 1000))
        #expect(merged.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1101)])
        #expect(merged.packetsToClient.map(\.window) == [1000], "the client may send up to 2101")
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, flags: [.rst, .ack]))
        // A segment the secondary's kernel sent before the client's bytes, resent whole (the
        // primary asked for the connection whole): ACK 1001, window 500, an edge of 1501.
        let resent = try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1001, window: 500, payload: numberedBytes(1...3))
        )
        #expect(resent.packetsToClient.map(\.payload) == [numberedBytes(1...3)])
        #expect(resent.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1001)])
        #expect(resent.packetsToClient.map(\.window) == [1100], "1001 + 1100 = 2101, the edge already offered")
        // The secondary's own later edge moves it on.
        let later = try scenario.secondary(
            S.fromServer(.secondary, seq: 4, ack: 1101, window: 2000, payload: numberedBytes(4...5))
        )
        #expect(later.packetsToClient.map(\.window) == [2000])
    }

    @Test("the primary's kernel closes where S has bytes (its application died): S's bytes win, no FIN")
    func primaryClosesEarly() throws {
        var scenario = try established()
        let fin = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack]))
        #expect(fin.packetsToClient.isEmpty, "a FIN alone waits for S")
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...4)))
        #expect(s.events == [.replicaLost(scenario.key, role: .primary, cause: .closedEarly)])
        #expect(s.packetsToClient.map(\.payload) == [numberedBytes(1...4)])
        #expect(!s.packetsToClient.contains { $0.flags.contains(.fin) })
        #expect(scenario.status?.phase == "secondary-only")
    }

    @Test(
        "an idle connection whose primary application died: the FIN waits, the client's next request resets P, S answers"
    )
    func idleConnectionOfADeadPrimary() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack]))
        let (request, _) = try scenario.client(S.fromClient(seq: 1001, ack: 1, payload: [9, 9]))
        #expect(request?.acknowledgmentNumber == SequenceNumber(31), "still replicating: translated for P")
        let reset = try scenario.primary(S.fromServer(.primary, seq: 32, ack: 0, flags: [.rst]))
        #expect(reset.packetsToClient.isEmpty)
        let answer = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1003, payload: numberedBytes(1...2)))
        #expect(answer.packetsToClient.map(\.payload) == [numberedBytes(1...2)])
        #expect(answer.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1003)])
    }

    @Test("the secondary's kernel resets an established connection: P goes on alone, translated by Δ")
    func secondaryResetsEstablished() throws {
        var scenario = try established()
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...3)))
        let reset = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.rst, .ack]))
        #expect(reset.events == [.replicaLost(scenario.key, role: .secondary, cause: .reset)])
        #expect(reset.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(!reset.packetsToClient.contains { $0.flags.contains(.rst) })
        #expect(scenario.status?.phase == "primary-only")
        let more = try scenario.primary(S.fromServer(.primary, seq: 34, ack: 1001, payload: numberedBytes(4...6)))
        #expect(more.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(4)])
    }

    @Test("the secondary fails while the client's upload waits for its ACK: P's ACK goes out at once")
    func uploadAcknowledgedWhenTheSecondaryFails() throws {
        var scenario = try established()
        try scenario.client(S.fromClient(seq: 1001, ack: 1, payload: numberedBytes(1...10)))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1011, window: 1000))
        #expect(p.packetsToClient.isEmpty, "S has not acknowledged: the merged ACK stays at 1001")
        let out = scenario.bridge.secondaryFailed(now: scenario.now)
        #expect(out.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1011)])
        #expect(out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(out.packetsToClient.first?.window ?? 0 > 0)
    }

    @Test("the secondary's kernel closes where P has bytes: P's bytes win")
    func secondaryClosesEarly() throws {
        var scenario = try established()
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.fin, .ack]))
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...2)))
        #expect(p.events == [.replicaLost(scenario.key, role: .secondary, cause: .closedEarly)])
        #expect(p.packetsToClient.map(\.payload) == [numberedBytes(1...2)])
        #expect(scenario.status?.phase == "primary-only")
    }

    @Test("primary started alone, then a secondary joins: only connections begun after the join are replicated")
    func aloneThenJoined() throws {
        var scenario = S()
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], port: 40_001))
        #expect(scenario.bridge.connectionCount == 0, "alone: not tracked")
        scenario.bridge.secondaryJoined()
        #expect(!scenario.bridge.isAlone)
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        #expect(scenario.status?.phase == "replicating")
        #expect(
            try scenario.primaryVerdict(S.fromServer(.primary, seq: 7, ack: 1001, payload: [1], port: 40_001)) == .pass,
            "the connection begun while alone stays the primary's own"
        )
    }

    @Test("the secondary's bridge restarted: its replicas are gone, P serves them alone; a held handshake goes out")
    func secondaryRestarted() throws {
        var scenario = try established()
        try scenario.client(S.fromClient(seq: 5000, flags: [.syn], port: 40_002))
        try scenario.primary(S.fromServer(.primary, seq: 900, ack: 5001, flags: [.syn, .ack], port: 40_002))
        let out = scenario.bridge.secondaryRestarted(now: scenario.now)
        #expect(out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(900)])
        #expect(scenario.status?.phase == "primary-only")
        #expect(!scenario.bridge.isAlone, "new connections are replicated with the new secondary")
    }

    /// Found with Fuzz/BridgeCoresFuzzer.swift's invariant that a held SYN-ACK belongs to a tracked
    /// connection: a new SYN while alone forgot the connection but kept its primary's SYN-ACK, which
    /// went to the client of a later connection on the same ports when the secondary refused that one.
    @Test("a new SYN while alone forgets the old connection's held SYN-ACK with it")
    func heldSYNACKForgottenWhileAlone() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], window: 64240))
        try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.syn, .ack]))
        // The primary's SYN-ACK comes second: it is held as it completes the handshake.
        try scenario.primary(S.fromServer(.primary, seq: 30, ack: 1001, flags: [.syn, .ack]))
        #expect(scenario.status?.phase == "replicating")
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        // The client starts over on the same ports while the primary is alone: not tracked.
        try scenario.client(S.fromClient(seq: 2000, flags: [.syn]))
        #expect(scenario.bridge.connectionCount == 0)
        #expect(scenario.bridge.heldPrimarySYNACKs.isEmpty)

        // A secondary joins; the next connection on the same ports is refused by its kernel before
        // the primary answers: nothing may go to the client yet, least of all the first
        // connection's SYN-ACK (sequence 30, acknowledging 1001).
        scenario.bridge.secondaryJoined()
        try scenario.client(S.fromClient(seq: 3000, flags: [.syn]))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 3001, flags: [.rst, .ack]))
        #expect(out.packetsToClient.isEmpty)
        #expect(scenario.bridge.counters.refusedBySecondary == 1)
    }
}
