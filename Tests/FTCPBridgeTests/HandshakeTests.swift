import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Connection establishment (paper §7.1)")
struct HandshakeTests {
    typealias S = PrimaryScenario

    @Test("the client sees one SYN-ACK in the secondary's space, only after both kernels answered")
    func mergedSYNACK() throws {
        var scenario = S()
        try scenario.client(
            S.fromClient(
                seq: 1000,
                flags: [.syn],
                options: [
                    .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 777, echoReply: 0), .noOperation,
                    .windowScale(7),
                ]
            )
        )
        let fromP = try scenario.primary(
            S.fromServer(
                .primary,
                seq: 5000,
                ack: 1001,
                flags: [.syn, .ack],
                window: 65160,
                options: [
                    .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 90_000, echoReply: 777), .noOperation,
                    .windowScale(7),
                ]
            )
        )
        #expect(fromP.packetsToClient.isEmpty)
        let fromS = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 200,
                ack: 1001,
                flags: [.syn, .ack],
                window: 64000,
                options: [
                    .maximumSegmentSize(1400), .sackPermitted, .timestamps(value: 30_000, echoReply: 777), .noOperation,
                    .windowScale(9),
                    .unknown(kind: 30, data: [0, 1, 2, 3]),
                ]
            )
        )
        #expect(fromS.packetsToClient.count == 1)
        let synAck = try #require(fromS.packetsToClient.first)
        #expect(synAck.source == S.serviceAddress)
        #expect(synAck.destination == S.clientAddress)
        #expect(synAck.flags == [.syn, .ack])
        #expect(synAck.sequenceNumber == SequenceNumber(200))
        #expect(synAck.acknowledgmentNumber == SequenceNumber(1001))
        #expect(synAck.window == 64000)
        // MSS = min, SACK and timestamps agreed, the secondary's TSval and shift; the unknown option is stripped.
        #expect(
            synAck.options == [
                .maximumSegmentSize(1400), .sackPermitted, .timestamps(value: 30_000, echoReply: 777),
                .noOperation, .windowScale(9),
            ]
        )
        #expect(fromS.events == [.connectionReplicated(scenario.key, delta: 4800)])
        let status = try #require(scenario.status)
        #expect(status.delta == 4800)
        #expect(status.timestampDelta == 60_000)
    }

    @Test("the client's ACK of the SYN-ACK reaches the primary's kernel moved by Δ")
    func handshakeACKTranslated() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 5000, secondaryISN: 200)
        let (delivered, _) = try scenario.client(S.fromClient(seq: 1001, ack: 201))
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(5001))
        #expect(delivered?.sequenceNumber == SequenceNumber(1001))
    }

    @Test("the secondary answering first works the same")
    func secondaryFirst() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1460)]))
        let s = try scenario.secondary(
            S.fromServer(.secondary, seq: 200, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        #expect(s.packetsToClient.isEmpty)
        let p = try scenario.primary(
            S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        #expect(p.packetsToClient.first?.sequenceNumber == SequenceNumber(200))
    }

    @Test("without a client window-scale option no scale is sent, and neither is SACK unless all three offer it")
    func optionsNotOffered() throws {
        var scenario = S()
        let synAck = try #require(
            try scenario.handshake(
                primaryISN: 1,
                secondaryISN: 2,
                clientOptions: [.maximumSegmentSize(1460)],
                primaryOptions: [.maximumSegmentSize(1460), .sackPermitted, .noOperation, .windowScale(7)],
                secondaryOptions: [.maximumSegmentSize(1460), .sackPermitted, .noOperation, .windowScale(7)]
            )
        )
        #expect(synAck.options == [.maximumSegmentSize(1460)])
    }

    @Test("a retransmitted SYN-ACK after the handshake is sent again in the secondary's space")
    func retransmittedSYNACK() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1460)]))
        try scenario.primary(
            S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        try scenario.secondary(
            S.fromServer(.secondary, seq: 200, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        let again = try scenario.primary(
            S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        #expect(again.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(200)])
        #expect(again.packetsToClient.first?.flags == [.syn, .ack])
    }

    @Test(
        "the secondary refusing a connection (RST): the primary's SYN-ACK goes out as it is and the bridge forgets it"
    )
    func secondaryRefuses() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        try scenario.primary(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack]))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 0, ack: 1001, flags: [.rst, .ack]))
        #expect(out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(5000)])
        #expect(out.packetsToClient.map(\.flags) == [[.syn, .ack]])
        #expect(out.events == [.replicaLost(scenario.key, role: .secondary, cause: .reset)])
        #expect(scenario.status == nil)
        #expect(try scenario.primaryVerdict(S.fromServer(.primary, seq: 5001, ack: 1001, payload: [1])) == .pass)
    }

    @Test("a connection the bridge never saw begin keeps the primary's own space: its segments pass unchanged")
    func unknownFromPrimary() throws {
        var scenario = S()
        #expect(try scenario.primaryVerdict(S.fromServer(.primary, seq: 1, ack: 2, payload: [1])) == .pass)
        #expect(scenario.bridge.counters.passedUnprotectedFromPrimary == 1)
        #expect(scenario.bridge.connectionCount == 0)
    }
}

@Suite("Races in the handshake")
struct HandshakeRaceTests {
    typealias S = PrimaryScenario

    @Test(
        "the secondary's SYN-ACK arriving before the client's SYN is kept, and the handshake completes without a retransmission"
    )
    func secondarySYNACKOvertakesClientSYN() throws {
        var scenario = S()
        let early = try scenario.secondary(
            S.fromServer(.secondary, seq: 200, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        #expect(early.packetsToClient.isEmpty)
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1460)]))
        let out = try scenario.primary(
            S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack], options: [.maximumSegmentSize(1460)])
        )
        #expect(out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(200)])
        #expect(out.packetsToClient.first?.flags == [.syn, .ack])
    }

    @Test("an early SYN-ACK answering another SYN (other ISN) is not used")
    func earlySYNACKForOtherISN() throws {
        var scenario = S()
        try scenario.secondary(S.fromServer(.secondary, seq: 200, ack: 77, flags: [.syn, .ack]))
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        let out = try scenario.primary(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack]))
        #expect(out.packetsToClient.isEmpty)
    }

    // MARK: A kernel that still holds the ports' previous connection

    /// The client (its ports used again, RFC 6191's TIME-WAIT reuse) sends SYN 70000; the
    /// primary's kernel still holds the previous connection on those ports (LAST-ACK: the
    /// client's last ACK was lost) and answers with an ACK of that one, seq 5500 ack 3000.
    /// One server would send it to the client, whose reset <SEQ=3000> ends the old connection
    /// (RFC 9293 §3.10.7.3); the client's next SYN then opens the new one.
    @Test(
        "a kernel's ACK of the ports' previous connection reaches the client; its reset and next SYN open the new one",
        arguments: [ServerRole.primary, .secondary]
    )
    func answerOfThePreviousConnection(stale role: ServerRole) throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 70_000, flags: [.syn]))
        let other: ServerRole = role == .primary ? .secondary : .primary
        let synACK = S.fromServer(other, seq: other == .primary ? 5000 : 200, ack: 70_001, flags: [.syn, .ack])
        let answered = try role == .primary ? scenario.secondary(synACK) : scenario.primary(synACK)
        #expect(answered.packetsToClient.isEmpty, "one kernel's SYN-ACK waits for the other's")

        let stale = S.fromServer(role, seq: 5500, ack: 3000)
        let out = try role == .primary ? scenario.primary(stale) : scenario.secondary(stale)
        let toClient = try #require(out.packetsToClient.first, "the stale ACK must reach the client")
        #expect(out.packetsToClient.count == 1)
        #expect(toClient.source == S.serviceAddress && toClient.destination == S.clientAddress)
        #expect(toClient.flags == [.ack])
        #expect(toClient.acknowledgmentNumber == SequenceNumber(3000), "the client resets with SEQ=SEG.ACK")
        #expect(scenario.status?.statistics.previousConnectionsAnswered == 1)
        #expect(out.events == [.previousConnectionAnswered(scenario.key, role: role)])

        // The client's reset goes to the kernel as it is; the merge waits for the SYN again.
        let reset = try scenario.client(S.fromClient(seq: 3000, flags: [.rst]))
        #expect(reset.delivered?.sequenceNumber == SequenceNumber(3000))
        #expect(scenario.status?.phase == "handshake")
        let again = try scenario.client(S.fromClient(seq: 70_000, flags: [.syn]))
        #expect(again.delivered != nil)
        let fresh = S.fromServer(role, seq: role == .primary ? 5000 : 200, ack: 70_001, flags: [.syn, .ack])
        let merged = try role == .primary ? scenario.primary(fresh) : scenario.secondary(fresh)
        #expect(merged.packetsToClient.map(\.flags) == [[.syn, .ack]])
        #expect(merged.packetsToClient.first?.sequenceNumber == SequenceNumber(200))
        #expect(merged.events == [.connectionReplicated(scenario.key, delta: 4800)])
    }

    @Test("a kernel's segment with bytes before the handshake is merged is not passed (its ACK is)")
    func staleBytesAreNotPassed() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 70_000, flags: [.syn]))
        let out = try scenario.primary(S.fromServer(.primary, seq: 5500, ack: 3000, payload: [1, 2, 3]))
        #expect(out.packetsToClient.isEmpty)
        #expect(scenario.status?.statistics.droppedBeforeHandshake == 1)
    }
}
