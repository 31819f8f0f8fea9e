import FTCPWire
import Testing

@testable import FTCPBridge

/// A pair that serves two service addresses, A1 (10.80.0.1) and A2 (10.80.0.101). Each
/// connection speaks from the address its client's SYN went to; the secondary's kernel knows
/// every connection under its own address, so one client endpoint and port used towards both
/// addresses at once can be replicated only once.
@Suite("Several service addresses")
struct ServiceAddressesTests {
    typealias S = PrimaryScenario
    static let second = IPv4Address(10, 80, 0, 101)
    static let configuration = BridgeConfiguration(
        serviceAddress: S.serviceAddress,
        additionalServiceAddresses: [second],
        secondaryAddress: S.secondaryAddress,
        protectedPorts: [S.serverPort]
    )

    static func toAddress(_ address: IPv4Address, _ fields: TCPPacketFields) -> TCPPacketFields {
        var fields = fields
        fields.destination = address
        return fields
    }

    static func fromAddress(_ address: IPv4Address, _ fields: TCPPacketFields) -> TCPPacketFields {
        var fields = fields
        fields.source = address
        return fields
    }

    @Test("primary: C→A2 SYN 1000; P (from A2) SYN-ACK 5000, S SYN-ACK 9000: the client gets 9000 from A2")
    func mergedFromTheAddressTheClientChose() throws {
        var scenario = S(configuration: Self.configuration)
        try scenario.client(Self.toAddress(Self.second, S.fromClient(seq: 1000, flags: [.syn])))
        let held = try scenario.primary(
            Self.fromAddress(Self.second, S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack]))
        )
        #expect(held.packetsToClient.isEmpty)
        let merged = try scenario.secondary(S.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack]))
        #expect(merged.packetsToClient.first?.source == Self.second)
        #expect(merged.packetsToClient.first?.sequenceNumber == SequenceNumber(9000))
        // C: ACK 1001/9001 reaches P as 1001/5001 (Δ = −4000).
        let delivered = try scenario.client(Self.toAddress(Self.second, S.fromClient(seq: 1001, ack: 9001))).delivered
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(5001))
        #expect(scenario.status?.serviceAddress == Self.second)
        #expect(scenario.status?.phase == "replicating")
        // P: bytes 5001–5003 from A2, S: 9001–9003: one copy to the client, from A2.
        try scenario.primary(
            Self.fromAddress(Self.second, S.fromServer(.primary, seq: 5001, ack: 1001, payload: [7, 8, 9]))
        )
        let data = try scenario.secondary(S.fromServer(.secondary, seq: 9001, ack: 1001, payload: [7, 8, 9]))
        #expect(data.packetsToClient.map(\.source) == [Self.second])
        #expect(data.packetsToClient.first?.payload == [7, 8, 9])
    }

    @Test("primary: the same client port to A1 while its A2 connection is open is passed unprotected, untouched")
    func collidingConnectionIsThePrimarysAlone() throws {
        var scenario = S(configuration: Self.configuration)
        try scenario.handshakeTo(Self.second)
        // C→A1 SYN 7000 from the same port: passed as it is, reported, not tracked.
        let (delivered, output) = try scenario.client(S.fromClient(seq: 7000, flags: [.syn]))
        #expect(delivered?.sequenceNumber == SequenceNumber(7000))
        #expect(
            output.events == [.collidingServiceAddress(scenario.key, served: Self.second, refused: S.serviceAddress)]
        )
        #expect(scenario.bridge.counters.passedCollidingAddress == 1)
        // P's SYN-ACK from A1 passes unchanged; the client's ACK to A1 is not translated.
        #expect(try scenario.primaryVerdict(S.fromServer(.primary, seq: 300, ack: 7001, flags: [.syn, .ack])) == .pass)
        let ack = try scenario.client(S.fromClient(seq: 7001, ack: 301)).delivered
        #expect(ack?.acknowledgmentNumber == SequenceNumber(301))
        // The A2 connection goes on merged.
        #expect(scenario.status?.serviceAddress == Self.second)
        #expect(scenario.status?.phase == "replicating")
    }

    @Test("secondary: C→A2 is fed to the kernel at its own address; restart and translation speak from A2")
    func secondaryKeepsEachConnectionsAddress() throws {
        var bridge = SecondaryBridge(configuration: Self.configuration)
        #expect(
            try Self.capture(&bridge, Self.toAddress(Self.second, S.fromClient(seq: 1000, flags: [.syn]))) == .inject
        )
        #expect(try Self.kernel(&bridge, S.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack])))
        #expect(try Self.capture(&bridge, Self.toAddress(Self.second, S.fromClient(seq: 1001, ack: 9001))) == .inject)
        #expect(try Self.kernel(&bridge, S.fromServer(.secondary, seq: 9001, ack: 1001, payload: [1, 2, 3])))
        #expect(bridge.serviceAddress(of: S.PrimaryKey.key) == Self.second)
        // C→A1 from the same port while that one is open: not for this kernel.
        #expect(try Self.capture(&bridge, S.fromClient(seq: 7000, flags: [.syn])) == .ignore)
        #expect(bridge.counters.ignoredCollidingAddress == 1)

        #expect(bridge.promote() == [S.PrimaryKey.key])
        #expect(bridge.inheritedServiceAddresses == [S.PrimaryKey.key: Self.second])
        let restart = try bridge.restartPackets().map { try TCPPacketFields(parsing: $0) }
        #expect(!restart.isEmpty && restart.allSatisfy { $0.source == Self.second })
        // After the takeover: to A1 it is not this connection; to A2 it is, and the kernel's
        // answer leaves from A2.
        #expect(try !Self.promotedClient(&bridge, S.fromClient(seq: 1001, ack: 9004)))
        #expect(try Self.promotedClient(&bridge, Self.toAddress(Self.second, S.fromClient(seq: 1001, ack: 9004))))
        var answer = try S.fromServer(.secondary, seq: 9004, ack: 1001, payload: [4]).build()
        let translated = try answer.withUnsafeMutableBytes {
            try bridge.promotedKernelSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(translated)
        #expect(try TCPPacketFields(parsing: answer).source == Self.second)
    }

    @Test("secondary: once its kernel sent a FIN, the same ports to A1 begin a new connection with fresh state")
    func portsUsedAgainAfterAClose() throws {
        var bridge = SecondaryBridge(configuration: Self.configuration)
        _ = try Self.capture(&bridge, Self.toAddress(Self.second, S.fromClient(seq: 1000, flags: [.syn])))
        #expect(try Self.kernel(&bridge, S.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack])))
        _ = try Self.capture(
            &bridge,
            Self.toAddress(Self.second, S.fromClient(seq: 1001, ack: 9001, flags: [.fin, .ack]))
        )
        #expect(try Self.kernel(&bridge, S.fromServer(.secondary, seq: 9001, ack: 1002, flags: [.fin, .ack])))
        #expect(bridge.inheritedClosing.isEmpty)
        #expect(try Self.capture(&bridge, S.fromClient(seq: 50_000, flags: [.syn])) == .inject)
        #expect(bridge.serviceAddress(of: S.PrimaryKey.key) == S.serviceAddress)
        let activity = bridge.connections.first?.activity
        #expect(activity?.finFromClient == false && activity?.finFromKernel == false)
        #expect(bridge.counters.ignoredCollidingAddress == 0)
    }

    @Test("inherited connections leave from the address their clients know")
    func inheritedPerAddress() throws {
        let key = S.PrimaryKey.key
        var inherited = InheritedConnections(
            serviceAddress: S.serviceAddress,
            nodeAddress: S.secondaryAddress,
            keys: [key],
            serviceAddresses: [key: Self.second],
            now: .zero
        )
        var toA1 = try S.fromClient(seq: 1, ack: 1).build()
        #expect(try !toA1.withUnsafeMutableBytes { try inherited.clientSegment(TCPPacket(validating: $0), now: .zero) })
        var toA2 = try Self.toAddress(Self.second, S.fromClient(seq: 1, ack: 1)).build()
        #expect(try toA2.withUnsafeMutableBytes { try inherited.clientSegment(TCPPacket(validating: $0), now: .zero) })
        #expect(try TCPPacketFields(parsing: toA2).destination == S.secondaryAddress)
        var fromKernel = try S.fromServer(.secondary, seq: 1, ack: 1).build()
        #expect(
            try fromKernel.withUnsafeMutableBytes { try inherited.kernelSegment(TCPPacket(validating: $0), now: .zero) }
        )
        #expect(try TCPPacketFields(parsing: fromKernel).source == Self.second)
    }

    // MARK: Helpers

    static func capture(_ bridge: inout SecondaryBridge, _ fields: TCPPacketFields) throws -> CaptureVerdict {
        var bytes = try fields.build()
        return try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
    }

    static func kernel(_ bridge: inout SecondaryBridge, _ fields: TCPPacketFields) throws -> Bool {
        var bytes = try fields.build()
        return try bytes.withUnsafeMutableBytes {
            try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) == .relayToPrimary
        }
    }

    static func promotedClient(_ bridge: inout SecondaryBridge, _ fields: TCPPacketFields) throws -> Bool {
        var bytes = try fields.build()
        return try bytes.withUnsafeMutableBytes {
            try bridge.promotedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
    }
}

extension PrimaryScenario {
    enum PrimaryKey {
        static let key = ConnectionKey(clientAddress: clientAddress, clientPort: clientPort, serverPort: serverPort)
    }

    /// The three-way handshake to `address`: C SYN 1000, P SYN-ACK 5000, S SYN-ACK 9000, C ACK.
    mutating func handshakeTo(_ address: IPv4Address) throws {
        typealias T = ServiceAddressesTests
        try client(T.toAddress(address, Self.fromClient(seq: 1000, flags: [.syn])))
        try primary(T.fromAddress(address, Self.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack])))
        try secondary(Self.fromServer(.secondary, seq: 9000, ack: 1001, flags: [.syn, .ack]))
        try client(T.toAddress(address, Self.fromClient(seq: 1001, ack: 9001)))
    }
}
