import FTCPWire
import Testing

@testable import FTCPBridge

/// Segments a client (or someone who claims to be one) sends to break the bridges: SYN floods
/// that never complete, blind resets and SYNs (RFC 5961), acknowledgments of bytes never sent,
/// MSS 1. Each is judged as Linux judges it, and none costs a legitimate client its connection.
@Suite("Hostile client segments")
struct HostileSegmentsTests {
    typealias S = PrimaryScenario
    static let small = BridgeConfiguration(
        serviceAddress: S.serviceAddress,
        secondaryAddress: S.secondaryAddress,
        protectedPorts: [S.serverPort],
        maximumConnections: 4,
        handshakeTimeoutMilliseconds: 5_000,
        idleTimeoutMilliseconds: 60_000
    )

    /// C (port) SYN 1000; P SYN-ACK 5000, S SYN-ACK 9000; the client never answers.
    static func halfOpen(_ scenario: inout S, port: UInt16) throws {
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn], port: port))
        try scenario.primary(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack], port: port))
        try scenario.secondary(S.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack], port: port))
    }

    /// The same, and the client's ACK 1001/9001.
    static func established(_ scenario: inout S, port: UInt16) throws {
        try halfOpen(&scenario, port: port)
        try scenario.client(S.fromClient(seq: 1001, ack: 9001, port: port))
    }

    @Test("a flood of half-open handshakes fills the table; a new SYN takes the oldest one's place")
    func floodDoesNotLockClientsOut() throws {
        var scenario = S(configuration: Self.small)
        for port in UInt16(50_000)..<50_004 {
            try Self.halfOpen(&scenario, port: port)
            scenario.now = scenario.now.adding(milliseconds: 1)
        }
        #expect(scenario.bridge.connectionCount == 4)
        // A legitimate client: its SYN goes in, the oldest flood entry (port 50000) goes.
        let syn = try scenario.client(S.fromClient(seq: 7000, flags: [.syn], port: 40_001))
        #expect(syn.delivered != nil)
        #expect(scenario.bridge.counters.evictedHandshakes == 1 && scenario.bridge.counters.droppedTableFull == 0)
        #expect(
            scenario.bridge.connections[
                ConnectionKey(clientAddress: S.clientAddress, clientPort: 50_000, serverPort: S.serverPort)
            ] == nil
        )
        try scenario.primary(S.fromServer(.primary, seq: 300, ack: 7001, flags: [.syn, .ack], port: 40_001))
        let answer = try scenario.secondary(
            S.fromServer(.secondary, seq: 600, ack: 7001, flags: [.syn, .ack], port: 40_001)
        )
        #expect(answer.packetsToClient.first?.flags == [.syn, .ack])
    }

    @Test("a table full of established connections still drops a new SYN (and counts it); no scan per SYN")
    func fullOfEstablished() throws {
        var scenario = S(configuration: Self.small)
        for port in UInt16(40_000)..<40_004 { try Self.established(&scenario, port: port) }
        for attempt in 0..<50 {
            let syn = try scenario.client(S.fromClient(seq: 1000, flags: [.syn], port: 41_000 + UInt16(attempt)))
            #expect(syn.delivered == nil)
        }
        #expect(scenario.bridge.counters.droppedTableFull == 50)
        #expect(scenario.bridge.eviction.scans == 1, "a fruitless scan is not repeated within 100 ms")
    }

    @Test("half-open handshakes expire after the handshake timeout; established ones only when idle")
    func halfOpenExpires() throws {
        var scenario = S(configuration: Self.small)
        try Self.halfOpen(&scenario, port: 50_000)
        try Self.established(&scenario, port: 40_000)
        scenario.now = scenario.now.adding(milliseconds: 5_000)
        _ = scenario.bridge.expire(now: scenario.now)
        #expect(scenario.bridge.connectionStatuses.map(\.key.clientPort) == [40_000])
    }

    @Test("RFC 5961: a reset with a wrong sequence number leaves the connection; the exact one ends it")
    func blindReset() throws {
        var scenario = S(configuration: Self.small)
        try Self.established(&scenario, port: S.clientPort)
        // C has sent up to 1001; P and S acknowledged 1001. A reset at 1500 is a guess.
        try scenario.client(S.fromClient(seq: 1500, flags: [.rst]))
        #expect(scenario.status?.phase == "replicating")
        #expect(scenario.status?.statistics.unacceptableResets == 1)
        try scenario.client(S.fromClient(seq: 1001, flags: [.rst]))
        #expect(scenario.status?.phase == "closed")
    }

    @Test("RFC 5961: a SYN with a new ISN on an established connection is passed on and replaces nothing")
    func blindSYN() throws {
        var scenario = S(configuration: Self.small)
        try Self.established(&scenario, port: S.clientPort)
        let delta = scenario.status?.delta
        let syn = try scenario.client(S.fromClient(seq: 777_777, flags: [.syn]))
        #expect(syn.delivered != nil, "the kernels answer it with a challenge ACK")
        #expect(scenario.bridge.counters.synOnEstablished == 1)
        #expect(scenario.status?.phase == "replicating" && scenario.status?.delta == delta)
    }

    @Test("an ACK of bytes never sent to the client is not taken as its progress")
    func acknowledgmentOfUnsentData() throws {
        var scenario = S(configuration: Self.small)
        try Self.established(&scenario, port: S.clientPort)
        try scenario.client(S.fromClient(seq: 1001, ack: 9_000_000))
        #expect(scenario.bridge.connections[scenario.key]?.client.acknowledged == SequenceNumber(9001))
        #expect(scenario.status?.statistics.acknowledgmentsOfUnsentData == 1)
    }

    @Test("MSS 1 in a client's SYN reaches the kernels as 536, and the merge cuts no finer")
    func tinyMSS() throws {
        var scenario = S(configuration: Self.small)
        let delivered = try scenario.client(
            S.fromClient(seq: 1000, flags: [.syn], options: [.maximumSegmentSize(1)])
        ).delivered
        #expect(delivered?.options.contains(.maximumSegmentSize(536)) == true)
        #expect(scenario.bridge.connections[scenario.key]?.outputMaximumSegmentSize == 536)
    }

    // MARK: The secondary

    static func capture(_ bridge: inout SecondaryBridge, _ fields: TCPPacketFields) throws -> CaptureVerdict {
        var bytes = try fields.build()
        return try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
    }

    static func kernel(_ bridge: inout SecondaryBridge, _ fields: TCPPacketFields) throws {
        var bytes = try fields.build()
        _ = try bytes.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
    }

    @Test("secondary: a blind reset and an ACK beyond what the kernel sent keep the restart copy")
    func secondaryKeepsItsCopy() throws {
        var bridge = SecondaryBridge(configuration: Self.small)
        _ = try Self.capture(&bridge, S.fromClient(seq: 1000, flags: [.syn]))
        try Self.kernel(&bridge, S.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack]))
        _ = try Self.capture(&bridge, S.fromClient(seq: 1001, ack: 9001))
        try Self.kernel(
            &bridge,
            S.fromServer(.secondary, seq: 9001, ack: 1001, payload: Array(repeating: 7, count: 100))
        )
        let retained = bridge.retainedBytes
        _ = try Self.capture(&bridge, S.fromClient(seq: 1001, ack: 50_000))
        _ = try Self.capture(&bridge, S.fromClient(seq: 4242, flags: [.rst]))
        #expect(bridge.retainedBytes == retained)
        #expect(bridge.counters.unacceptableResets == 1)
        #expect(bridge.promote().count == 1, "not counted as reset: still inherited")
    }

    @Test("secondary: a SYN flood fills its table; a new connection takes the oldest half-open one's place")
    func secondaryFlood() throws {
        var bridge = SecondaryBridge(configuration: Self.small)
        for port in UInt16(50_000)..<50_004 {
            _ = try Self.capture(&bridge, S.fromClient(seq: 1, flags: [.syn], port: port))
        }
        _ = try Self.capture(&bridge, S.fromClient(seq: 1000, flags: [.syn], port: 40_001))
        #expect(bridge.connections.map(\.key.clientPort).contains(40_001))
        #expect(bridge.counters.evicted == 1 && bridge.counters.untrackedConnections == 0)
        // Its handshake completes: from then on it is not given up for a flood's SYN.
        _ = try Self.capture(&bridge, S.fromClient(seq: 1001, ack: 1, port: 40_001))
        for port in UInt16(51_000)..<51_010 {
            _ = try Self.capture(&bridge, S.fromClient(seq: 1, flags: [.syn], port: port))
        }
        #expect(bridge.connections.map(\.key.clientPort).contains(40_001))
    }
}
