import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Connection termination (paper §8)")
struct CloseTests {
    typealias S = PrimaryScenario

    func established() throws -> S {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        return scenario
    }

    @Test("the servers' FIN first: merged like a byte, only when both sent it at the same place")
    func serversCloseFirst() throws {
        var scenario = try established()
        try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1001, flags: [.fin, .ack], payload: numberedBytes(1...5))
        )
        let s = try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.ack], payload: numberedBytes(1...5))
        )
        #expect(s.packetsToClient.map(\.flags) == [[.ack, .psh]], "S has not closed yet: no FIN")
        let fin = try scenario.secondary(S.fromServer(.secondary, seq: 6, ack: 1001, flags: [.fin, .ack]))
        #expect(fin.packetsToClient.map(\.flags) == [[.fin, .ack]])
        #expect(fin.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(6)])
        // The client acknowledges the FIN and closes its side.
        try scenario.client(S.fromClient(seq: 1001, ack: 7))
        let (finToP, _) = try scenario.client(S.fromClient(seq: 1001, ack: 7, flags: [.fin, .ack]))
        #expect(finToP?.acknowledgmentNumber == SequenceNumber(37))
        try scenario.primary(S.fromServer(.primary, seq: 37, ack: 1002))
        let last = try scenario.secondary(S.fromServer(.secondary, seq: 7, ack: 1002))
        #expect(last.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1002)])
        #expect(last.events == [.connectionClosed(scenario.key, reason: .finished)])
        #expect(scenario.status?.phase == "closed")
    }

    @Test("the client's FIN first, then a half-closed connection that keeps sending to the client")
    func clientClosesFirst() throws {
        var scenario = try established()
        try scenario.client(S.fromClient(seq: 1001, ack: 1, flags: [.fin, .ack]))
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1002))
        let ackOfFIN = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1002))
        #expect(ackOfFIN.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1002)])
        // Half-closed: the servers go on sending.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1002, payload: numberedBytes(1...100)))
        let data = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1002, payload: numberedBytes(1...100)))
        #expect(data.packetsToClient.flatMap(\.payload) == numberedBytes(1...100))
        try scenario.client(S.fromClient(seq: 1002, ack: 101))
        try scenario.primary(S.fromServer(.primary, seq: 131, ack: 1002, flags: [.fin, .ack]))
        let fin = try scenario.secondary(S.fromServer(.secondary, seq: 101, ack: 1002, flags: [.fin, .ack]))
        #expect(fin.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(101)])
        let (_, closing) = try scenario.client(S.fromClient(seq: 1002, ack: 102))
        #expect(closing.events == [.connectionClosed(scenario.key, reason: .finished)])
    }

    @Test("the client's FIN re-sent after close: P's kernel's re-ACK is still translated, and S's goes out as it is")
    func clientFINResentAfterClose() throws {
        var scenario = try established()
        try scenario.client(S.fromClient(seq: 1001, ack: 1, flags: [.fin, .ack]))
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1002, flags: [.fin, .ack]))
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1002, flags: [.fin, .ack]))
        try scenario.client(S.fromClient(seq: 1002, ack: 2))
        #expect(scenario.status?.phase == "closed")
        // The client did not get the ACK of its FIN and sends the FIN again.
        let (resent, _) = try scenario.client(S.fromClient(seq: 1001, ack: 2, flags: [.fin, .ack]))
        #expect(resent?.acknowledgmentNumber == SequenceNumber(32))
        let p = try scenario.primary(S.fromServer(.primary, seq: 32, ack: 1002))
        #expect(p.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(2)])
        #expect(p.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1002)])
        // Once the linger ends the state is gone.
        scenario.now = scenario.now.adding(milliseconds: 60_000)
        _ = scenario.bridge.expire(now: scenario.now)
        #expect(scenario.status == nil)
    }

    @Test("both kernels reset: the first ends its replica, the second reaches the client")
    func resets() throws {
        var scenario = try established()
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, flags: [.rst, .ack]))
        #expect(p.packetsToClient.isEmpty)
        #expect(p.events == [.replicaLost(scenario.key, role: .primary, cause: .reset)])
        #expect(scenario.status?.phase == "secondary-only")
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, flags: [.rst, .ack]))
        #expect(s.packetsToClient.map(\.flags) == [[.rst, .ack]])
        #expect(s.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(s.events == [.connectionClosed(scenario.key, reason: .resetByServers)])
    }

    @Test("a client RST closes the connection")
    func clientReset() throws {
        var scenario = try established()
        let (_, out) = try scenario.client(S.fromClient(seq: 1001, flags: [.rst]))
        #expect(out.events == [.connectionClosed(scenario.key, reason: .resetByClient)])
    }
}
