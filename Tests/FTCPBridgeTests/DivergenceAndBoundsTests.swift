import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Divergence and bounds")
struct DivergenceAndBoundsTests {
    typealias S = PrimaryScenario

    @Test("different bytes at the same place: counted, reported, and the primary serves the connection alone")
    func divergence() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: Array("hello".utf8)))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array("help!".utf8)))
        #expect(out.events == [.divergence(scenario.key, at: SequenceNumber(4))])
        #expect(out.packetsToClient.flatMap(\.payload) == Array("hello".utf8))
        #expect(scenario.status?.phase == "primary-only")
        #expect(scenario.status?.statistics.divergences == 1)
        // From now on P's segments go out at once, translated; S's are dropped.
        let next = try scenario.primary(S.fromServer(.primary, seq: 36, ack: 1001, payload: Array(" world".utf8)))
        #expect(next.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(6)])
        #expect(
            try scenario.secondary(S.fromServer(.secondary, seq: 6, ack: 1001, payload: Array(" there".utf8)))
                .packetsToClient.isEmpty
        )
    }

    @Test(
        "a table full of half-open handshakes gives the oldest up for a new client SYN; a retransmitted SYN still passes"
    )
    func tableFull() throws {
        var scenario = S(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                maximumConnections: 2
            )
        )
        #expect(try scenario.client(S.fromClient(seq: 1, flags: [.syn], port: 1)).delivered != nil)
        scenario.now = scenario.now.adding(milliseconds: 1)
        #expect(try scenario.client(S.fromClient(seq: 1, flags: [.syn], port: 2)).delivered != nil)
        let (third, out) = try scenario.client(S.fromClient(seq: 1, flags: [.syn], port: 3))
        #expect(third != nil)
        #expect(out.events.isEmpty)
        #expect(scenario.bridge.counters.evictedHandshakes == 1 && scenario.bridge.counters.droppedTableFull == 0)
        #expect(Set(scenario.bridge.connectionStatuses.map(\.key.clientPort)) == [2, 3])
        // A retransmitted SYN of a tracked connection still passes.
        #expect(try scenario.client(S.fromClient(seq: 1, flags: [.syn], port: 2)).delivered != nil)
        // Once a handshake times out, there is room again.
        scenario.now = scenario.now.adding(milliseconds: 75_000)
        _ = scenario.bridge.expire(now: scenario.now)
        #expect(scenario.bridge.connectionCount == 0)
        #expect(try scenario.client(S.fromClient(seq: 1, flags: [.syn], port: 3)).delivered != nil)
    }

    /// A primary whose queues may hold 100 bytes in all.
    static func cappedAtHundredBytes() -> S {
        S(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                maximumQueuedBytesPerServer: 1 << 20,
                maximumQueuedBytesTotal: 100
            )
        )
    }

    @Test(
        "the bridge-wide cap: past 100 bytes in all, bytes no copy waits for are refused; bytes that pair, and a first 64 KiB, are always taken"
    )
    func totalCap() throws {
        var scenario = Self.cappedAtHundredBytes()
        // Connection A (client port 40000): P's 80 bytes wait for S's.
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...80)))
        #expect(scenario.bridge.queuedBytes == 80)
        // Connection B (client port 40001): P's first 10 bytes (nothing of P's queued here yet),
        // then 80 more of which the cap leaves room for 10.
        let portB: UInt16 = 40_001
        let keyB = ConnectionKey(clientAddress: S.clientAddress, clientPort: portB, serverPort: S.serverPort)
        try scenario.openAnother(port: portB)
        try scenario.primary(S.fromServer(.primary, seq: 701, ack: 5001, payload: numberedBytes(1...10), port: portB))
        try scenario.primary(S.fromServer(.primary, seq: 711, ack: 5001, payload: numberedBytes(11...90), port: portB))
        #expect(scenario.bridge.queuedBytes == 100)
        let statusB = { scenario.bridge.connectionStatuses.first { $0.key == keyB } }
        #expect(statusB()?.statistics.refusedOverTotalCap == 70)
        // S's copy of B: its first 20 bytes pair with P's and go out.
        let outB = try scenario.secondary(
            S.fromServer(.secondary, seq: 901, ack: 5001, payload: numberedBytes(1...90), port: portB)
        )
        #expect(outB.packetsToClient.flatMap(\.payload) == numberedBytes(1...20))
        // S's copy of A pairs whole: A's 80 bytes go out.
        let outA = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...80)))
        #expect(outA.packetsToClient.flatMap(\.payload) == numberedBytes(1...80))
        // P's kernel sends B's refused bytes again (the client never acknowledged them): they merge.
        let rest = try scenario.primary(
            S.fromServer(.primary, seq: 721, ack: 5001, payload: numberedBytes(21...90), port: portB)
        )
        #expect(rest.packetsToClient.flatMap(\.payload) == numberedBytes(21...90))
        #expect(scenario.bridge.queuedBytes == 0)
    }

    @Test("with the cap full of other connections' bytes, a connection whose servers have nothing queued still merges")
    func floorUnderAFullCap() throws {
        var scenario = Self.cappedAtHundredBytes()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...100)))
        #expect(scenario.bridge.queuedBytes == 100)
        let portB: UInt16 = 40_001
        try scenario.openAnother(port: portB)
        try scenario.primary(S.fromServer(.primary, seq: 701, ack: 5001, payload: numberedBytes(1...50), port: portB))
        let out = try scenario.secondary(
            S.fromServer(.secondary, seq: 901, ack: 5001, payload: numberedBytes(1...50), port: portB)
        )
        #expect(out.packetsToClient.flatMap(\.payload) == numberedBytes(1...50))
    }

    @Test("bytes past the queue bound are refused and counted; the retransmission fills the gap later")
    func queueBound() throws {
        var scenario = S(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                maximumQueuedBytesPerServer: 100
            )
        )
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        let data = (0..<150).map { UInt8(truncatingIfNeeded: $0) }
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: data))
        #expect(scenario.status?.queuedPrimaryBytes == 100)
        #expect(scenario.status?.statistics.refusedQueueBytes == 50)
        let first = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: data))
        #expect(first.packetsToClient.flatMap(\.payload) == Array(data[0..<100]))
        #expect(scenario.status?.statistics.refusedQueueBytes == 100, "S's tail was refused as well")
        // The client never acknowledged 101–150, so both kernels retransmit it.
        let tailFromP = try scenario.primary(S.fromServer(.primary, seq: 131, ack: 1001, payload: Array(data[100...])))
        #expect(tailFromP.packetsToClient.flatMap(\.payload).isEmpty)
        let tailFromS = try scenario.secondary(
            S.fromServer(.secondary, seq: 101, ack: 1001, payload: Array(data[100...]))
        )
        #expect(tailFromS.packetsToClient.flatMap(\.payload) == Array(data[100...]))
    }
}
