import FTCPWire
import Testing

@testable import FTCPBridge

/// Connections the servers open (Koch et al. §7.2), packet by packet. P is the primary's kernel
/// (its own address, ephemeral port 41000), S the secondary's (port 52000), T the remote end
/// (a back-end at 10.80.0.50:5432); the service address is the one T sees.
@Suite("Server-initiated connections (paper §7.2)")
struct OutboundConnectionTests {
    static let backEnd = IPv4Address(10, 80, 0, 50)
    static let remotePort: UInt16 = 5432
    static let primaryOwn = IPv4Address(10, 80, 0, 3)
    static let service = PrimaryScenario.serviceAddress
    static let secondaryAddress = PrimaryScenario.secondaryAddress
    static let primaryPort: UInt16 = 41_000
    static let secondaryPort: UInt16 = 52_000

    static let configuration = BridgeConfiguration(
        serviceAddress: service,
        secondaryAddress: secondaryAddress,
        protectedPorts: [9999],
        maximumQueuedBytesPerServer: 1 << 20,
        outboundSelections: [.remote(backEnd, port: remotePort), .localPort(20)]
    )

    var bridge = PrimaryBridge(configuration: Self.configuration)
    var now = MonotonicTime.seconds(1)
    let visible = ConnectionKey(clientAddress: backEnd, clientPort: remotePort, serverPort: secondaryPort)

    static let synOptions: [TCPOption] = [
        .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 100, echoReply: 0), .noOperation,
        .windowScale(7),
    ]

    /// A segment one server's kernel sends to T.
    static func fromKernel(
        _ role: ServerRole,
        seq: UInt32,
        ack: UInt32 = 0,
        flags: TCPFlags = [.ack],
        window: UInt16 = 500,
        options: [TCPOption] = [],
        payload: [UInt8] = [],
        localPort: UInt16? = nil,
        source: IPv4Address? = nil,
        remote: IPv4Address = backEnd,
        remotePort: UInt16 = remotePort
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: source ?? (role == .primary ? primaryOwn : secondaryAddress),
            destination: remote,
            sourcePort: localPort ?? (role == .primary ? primaryPort : secondaryPort),
            destinationPort: remotePort,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack),
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    /// A segment T sends to the service address, to the port it knows (the secondary's).
    static func fromRemote(
        seq: UInt32,
        ack: UInt32,
        flags: TCPFlags = [.ack],
        options: [TCPOption] = [],
        payload: [UInt8] = [],
        port: UInt16 = secondaryPort
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: backEnd,
            destination: service,
            sourcePort: remotePort,
            destinationPort: port,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack),
            flags: flags,
            window: 2000,
            options: options,
            payload: payload
        )
    }

    mutating func primary(_ fields: TCPPacketFields) throws -> (PrimaryKernelVerdict, BridgeOutput) {
        var bytes = try fields.build()
        let now = self.now
        return try bytes.withUnsafeMutableBytes { try bridge.primaryKernelSegment(TCPPacket(validating: $0), now: now) }
    }

    mutating func secondary(_ fields: TCPPacketFields) throws -> BridgeOutput {
        var bytes = try fields.build()
        let now = self.now
        return try bytes.withUnsafeMutableBytes {
            try bridge.secondaryKernelSegment(TCPPacket(validating: $0), now: now)
        }
    }

    /// T's segment; returns what the primary's kernel receives (nil: dropped), checksums checked.
    mutating func remote(_ fields: TCPPacketFields) throws -> (delivered: TCPPacketFields?, output: BridgeOutput) {
        var bytes = try fields.build()
        let now = self.now
        let (verdict, output, valid) = try bytes.withUnsafeMutableBytes { buffer in
            let view = try TCPPacket(validating: buffer)
            let (verdict, output) = bridge.clientSegment(view, now: now)
            return (verdict, output, view.isChecksumValid)
        }
        #expect(valid, "the rewritten segment's checksums are right")
        if case .drop = verdict { return (nil, output) }
        return (try TCPPacketFields(parsing: bytes), output)
    }

    /// Both SYNs and T's SYN-ACK with plain options; returns the merged SYN T received.
    mutating func open(primaryISN: UInt32 = 5000, secondaryISN: UInt32 = 9000, remoteISN: UInt32 = 700) throws
        -> TCPPacketFields?
    {
        let (verdict, p) = try primary(
            Self.fromKernel(.primary, seq: primaryISN, flags: [.syn], options: [.maximumSegmentSize(1460)])
        )
        #expect(verdict == .consume && p.packetsToClient.isEmpty)
        let s = try secondary(
            Self.fromKernel(.secondary, seq: secondaryISN, flags: [.syn], options: [.maximumSegmentSize(1460)])
        )
        _ = try remote(
            Self.fromRemote(
                seq: remoteISN,
                ack: secondaryISN &+ 1,
                flags: [.syn, .ack],
                options: [.maximumSegmentSize(1460)]
            )
        )
        _ = try primary(Self.fromKernel(.primary, seq: primaryISN &+ 1, ack: remoteISN &+ 1))
        _ = try secondary(Self.fromKernel(.secondary, seq: secondaryISN &+ 1, ack: remoteISN &+ 1))
        return s.packetsToClient.first
    }

    @Test("§7.2: both SYNs become one from the service address in S's space; T's SYN-ACK reaches P in its own")
    mutating func theExchange() throws {
        // P's kernel: SYN seq 5000 from its own address and port 41000. Held for S's.
        let (verdict, p) = try primary(
            Self.fromKernel(.primary, seq: 5000, flags: [.syn], window: 64240, options: Self.synOptions)
        )
        #expect(verdict == .consume)
        #expect(p.packetsToClient.isEmpty)
        // S's kernel: SYN seq 9000 from port 52000, a smaller MSS and its own clock.
        let s = try secondary(
            Self.fromKernel(
                .secondary,
                seq: 9000,
                flags: [.syn],
                window: 64000,
                options: [
                    .maximumSegmentSize(1400), .sackPermitted, .timestamps(value: 300, echoReply: 0), .noOperation,
                    .windowScale(7),
                ]
            )
        )
        let syn = try #require(s.packetsToClient.first)
        #expect(s.packetsToClient.count == 1)
        #expect(syn.source == Self.service && syn.destination == Self.backEnd)
        #expect(syn.sourcePort == Self.secondaryPort && syn.destinationPort == Self.remotePort)
        #expect(syn.flags == [.syn])
        #expect(syn.sequenceNumber == SequenceNumber(9000))
        #expect(syn.window == 64000)
        let merged = HandshakeOptions(
            maximumSegmentSize: 1400,
            windowScale: 7,
            sackPermitted: true,
            timestamps: (value: 300, echoReply: 0),
            window: 64000
        )
        var synBytes = try syn.build()
        let synOptions = try synBytes.withUnsafeMutableBytes { HandshakeOptions(try TCPPacket(validating: $0).tcp) }
        #expect(synOptions == merged)
        #expect(bridge.counters.outboundPaired == 1)

        // T: SYN-ACK seq 700, ack 9001 (S's space), TSecr 300. P's kernel gets ack 5001, TSecr
        // 100 (Δts = 100 − 300), at its own address and port.
        let (delivered, _) = try remote(
            Self.fromRemote(
                seq: 700,
                ack: 9001,
                flags: [.syn, .ack],
                options: [
                    .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 50, echoReply: 300), .noOperation,
                    .windowScale(8),
                ]
            )
        )
        let synACK = try #require(delivered)
        #expect(synACK.destination == Self.primaryOwn && synACK.destinationPort == Self.primaryPort)
        #expect(synACK.acknowledgmentNumber == SequenceNumber(5001))
        #expect(synACK.sequenceNumber == SequenceNumber(700))
        var synACKBytes = try synACK.build()
        let echoed = try synACKBytes.withUnsafeMutableBytes { try TCPPacket(validating: $0).tcp.timestamps }
        #expect(echoed?.echoReply == 100)

        // Both kernels acknowledge T's SYN: the smaller ACK goes out once both have.
        let (_, ackP) = try primary(
            Self.fromKernel(
                .primary,
                seq: 5001,
                ack: 701,
                options: [.noOperation, .noOperation, .timestamps(value: 101, echoReply: 50)]
            )
        )
        #expect(ackP.packetsToClient.isEmpty)
        let ackS = try secondary(
            Self.fromKernel(
                .secondary,
                seq: 9001,
                ack: 701,
                options: [.noOperation, .noOperation, .timestamps(value: 301, echoReply: 50)]
            )
        )
        let third = try #require(ackS.packetsToClient.first)
        #expect(third.flags == [.ack])
        #expect(third.sequenceNumber == SequenceNumber(9001) && third.acknowledgmentNumber == SequenceNumber(701))
        #expect(third.sourcePort == Self.secondaryPort)

        // Data both ways: T's 10 bytes reach P acknowledging 5001; P's "hello" waits for S's.
        let (data, _) = try remote(
            Self.fromRemote(
                seq: 701,
                ack: 9001,
                options: [.noOperation, .noOperation, .timestamps(value: 51, echoReply: 301)],
                payload: Array(repeating: 7, count: 10)
            )
        )
        #expect(data?.acknowledgmentNumber == SequenceNumber(5001))
        #expect(data?.destinationPort == Self.primaryPort)
        let hello = Array("hello".utf8)
        let (_, fromP) = try primary(
            Self.fromKernel(
                .primary,
                seq: 5001,
                ack: 711,
                options: [.noOperation, .noOperation, .timestamps(value: 102, echoReply: 51)],
                payload: hello
            )
        )
        #expect(fromP.packetsToClient.isEmpty)
        let fromS = try secondary(
            Self.fromKernel(
                .secondary,
                seq: 9001,
                ack: 711,
                options: [.noOperation, .noOperation, .timestamps(value: 302, echoReply: 51)],
                payload: hello
            )
        )
        let sent = try #require(fromS.packetsToClient.first)
        #expect(sent.payload == hello && sent.sequenceNumber == SequenceNumber(9001))
        #expect(sent.acknowledgmentNumber == SequenceNumber(711))

        // The four-way close: both servers' FINs at 9006 (S's space) become one; T's FIN and
        // both kernels' ACKs of it close the connection.
        _ = try primary(Self.fromKernel(.primary, seq: 5006, ack: 711, flags: [.fin, .ack]))
        let finS = try secondary(Self.fromKernel(.secondary, seq: 9006, ack: 711, flags: [.fin, .ack]))
        #expect(finS.packetsToClient.contains { $0.flags.contains(.fin) && $0.sequenceNumber == SequenceNumber(9006) })
        let (finT, _) = try remote(Self.fromRemote(seq: 711, ack: 9007, flags: [.fin, .ack]))
        #expect(finT?.acknowledgmentNumber == SequenceNumber(5007))
        _ = try primary(Self.fromKernel(.primary, seq: 5007, ack: 712))
        let last = try secondary(Self.fromKernel(.secondary, seq: 9007, ack: 712))
        #expect(last.events.contains(.connectionClosed(visible, reason: .finished)))
        #expect(bridge.connectionStatuses.first?.phase == "closed")
        #expect(bridge.connectionStatuses.first?.opensOutbound == true)
    }

    @Test("a lost relay of S's SYN: P's SYN waits, P's retransmission replaces it, S's retransmission pairs")
    mutating func lostSecondarySYN() throws {
        _ = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        now = now.adding(milliseconds: 1000)
        let (verdict, again) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(verdict == .consume && again.packetsToClient.isEmpty)
        now = now.adding(milliseconds: 500)
        _ = bridge.expire(now: now)  // 1.5 s: still within the pairing time
        let s = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        #expect(s.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(9000)])
        #expect(bridge.counters.outboundPaired == 1 && bridge.counters.outboundServedAlone == 0)
    }

    @Test("a lost merged SYN: either kernel's retransmitted SYN sends it again, the same")
    mutating func lostMergedSYN() throws {
        _ = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        let first = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        now = now.adding(milliseconds: 1000)
        let (_, again) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(again.packetsToClient == first.packetsToClient)
        let fromS = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        #expect(fromS.packetsToClient == first.packetsToClient)
    }

    @Test("a SYN without a partner: P's goes out as it is after the pairing time and stays its own; S's is refused")
    mutating func withoutPartner() throws {
        _ = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        now = now.adding(milliseconds: 2000)
        let expired = bridge.expire(now: now)
        let alone = try #require(expired.packetsToClient.first)
        #expect(alone.source == Self.primaryOwn && alone.sourcePort == Self.primaryPort)
        #expect(alone.sequenceNumber == SequenceNumber(5000) && alone.flags == [.syn])
        #expect(expired.events.contains { if case .outboundUnpaired(_, .primary) = $0 { true } else { false } })
        // Its retransmission, and everything after, passes as it is; nothing is tracked.
        let (verdict, _) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(verdict == .pass)
        #expect(bridge.connectionCount == 0)

        // S's SYN with no partner: after the pairing time its kernel gets a reset from "T" that
        // acknowledges the SYN, so its application sees the connection refused.
        _ = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn], localPort: 52_001))
        now = now.adding(milliseconds: 2000)
        let refused = bridge.expire(now: now)
        let reset = try #require(refused.packetsToSecondary.first)
        #expect(reset.flags == [.rst, .ack])
        #expect(reset.source == Self.backEnd && reset.sourcePort == Self.remotePort)
        #expect(reset.destination == Self.secondaryAddress && reset.destinationPort == 52_001)
        #expect(reset.acknowledgmentNumber == SequenceNumber(9001))
        #expect(bridge.counters.outboundRefusedOnSecondary == 1)
    }

    @Test("ports: connections to one endpoint pair in the order each kernel opened them")
    mutating func pairsInOrder() throws {
        _ = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn], localPort: 41_000))
        _ = try primary(Self.fromKernel(.primary, seq: 6000, flags: [.syn], localPort: 41_007))
        let first = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn], localPort: 52_000))
        let second = try secondary(Self.fromKernel(.secondary, seq: 3000, flags: [.syn], localPort: 33_000))
        #expect(first.packetsToClient.first?.sourcePort == 52_000)
        #expect(second.packetsToClient.first?.sourcePort == 33_000)
        // T answers the second; P's kernel gets it at 41007, acknowledging 6001.
        let (delivered, _) = try remote(Self.fromRemote(seq: 10, ack: 3001, flags: [.syn, .ack], port: 33_000))
        #expect(delivered?.destinationPort == 41_007)
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(6001))
    }

    @Test("active FTP: data connections from port 20 on both servers pair by endpoint and keep port 20")
    mutating func fixedPort() throws {
        let client = IPv4Address(10, 80, 0, 10)
        // P's vsftpd binds the service address and port 20; S's its own address and port 20.
        _ = try primary(
            Self.fromKernel(
                .primary,
                seq: 5000,
                flags: [.syn],
                localPort: 20,
                source: Self.service,
                remote: client,
                remotePort: 50_001
            )
        )
        let s = try secondary(
            Self.fromKernel(.secondary, seq: 9000, flags: [.syn], localPort: 20, remote: client, remotePort: 50_001)
        )
        let syn = try #require(s.packetsToClient.first)
        #expect(syn.source == Self.service && syn.sourcePort == 20 && syn.destinationPort == 50_001)
        var synACK = try TCPPacketFields(
            source: client,
            destination: Self.service,
            sourcePort: 50_001,
            destinationPort: 20,
            sequenceNumber: SequenceNumber(1),
            acknowledgmentNumber: SequenceNumber(9001),
            flags: [.syn, .ack],
            window: 1000,
            options: [],
            payload: []
        ).build()
        let now = self.now
        let (verdict, _) = try synACK.withUnsafeMutableBytes {
            try bridge.clientSegment(TCPPacket(validating: $0), now: now)
        }
        #expect(verdict == .accept(modified: true))
        let delivered = try TCPPacketFields(parsing: synACK)
        #expect(delivered.destination == Self.service && delivered.destinationPort == 20)
        #expect(delivered.acknowledgmentNumber == SequenceNumber(5001))
    }

    @Test("the secondary fails while T has not answered: P's kernel goes on alone, still moved by Δ")
    mutating func secondaryFailsInHandshake() throws {
        _ = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        _ = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        _ = bridge.secondaryFailed(now: now)
        let (_, again) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(again.packetsToClient.first?.sequenceNumber == SequenceNumber(9000))
        let (delivered, _) = try remote(Self.fromRemote(seq: 700, ack: 9001, flags: [.syn, .ack]))
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(5001))
        let (_, ack) = try primary(Self.fromKernel(.primary, seq: 5001, ack: 701))
        #expect(ack.packetsToClient.first?.sequenceNumber == SequenceNumber(9001))
        #expect(ack.packetsToClient.first?.sourcePort == Self.secondaryPort)
    }

    @Test("the secondary's application dies: its kernel's reset leaves the connection to P, translated and at S's port")
    mutating func secondaryApplicationDies() throws {
        _ = try open()
        let reset = try secondary(Self.fromKernel(.secondary, seq: 9001, ack: 701, flags: [.rst, .ack]))
        #expect(reset.packetsToClient.isEmpty, "the remote end never sees the dead replica's reset")
        #expect(reset.events.contains { if case .replicaLost(_, .secondary, _) = $0 { true } else { false } })
        let (_, data) = try primary(Self.fromKernel(.primary, seq: 5001, ack: 701, payload: [1, 2, 3]))
        let sent = try #require(data.packetsToClient.first)
        #expect(sent.sequenceNumber == SequenceNumber(9001) && sent.sourcePort == Self.secondaryPort)
        #expect(sent.payload == [1, 2, 3])
    }

    @Test("the primary's application dies: S's segments reach T as they are, and T's no longer reach P's kernel")
    mutating func primaryApplicationDies() throws {
        _ = try open()
        let (_, reset) = try primary(Self.fromKernel(.primary, seq: 5001, ack: 701, flags: [.rst, .ack]))
        #expect(reset.packetsToClient.isEmpty)
        let data = try secondary(Self.fromKernel(.secondary, seq: 9001, ack: 701, payload: [4, 5]))
        #expect(data.packetsToClient.first?.payload == [4, 5])
        #expect(data.packetsToClient.first?.source == Self.service)
        let (delivered, _) = try remote(Self.fromRemote(seq: 701, ack: 9003))
        #expect(delivered == nil, "P's kernel would only answer with resets")
    }

    @Test(
        "the ports used again: a new SYN on the 4-tuple of a closed connection is paired, not caught by the old entry"
    )
    mutating func portsUsedAgain() throws {
        _ = try open()
        // T resets the connection (its RST at the sequence the client side expects): closed.
        _ = try remote(Self.fromRemote(seq: 701, ack: 9001, flags: [.rst, .ack]))
        #expect(bridge.connectionStatuses.first?.phase == "closed")
        // Both kernels open the same ports again, with new ISNs.
        let (verdict, p) = try primary(Self.fromKernel(.primary, seq: 7000, flags: [.syn]))
        #expect(verdict == .consume && p.packetsToClient.isEmpty)
        let s = try secondary(Self.fromKernel(.secondary, seq: 3000, flags: [.syn]))
        #expect(s.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(3000)])
        let (delivered, _) = try remote(Self.fromRemote(seq: 100, ack: 3001, flags: [.syn, .ack]))
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(7001), "moved by the new Δ, not the old one")
    }

    @Test("a refused SYN of S sent again is refused again, and never pairs with P's next SYN")
    mutating func refusedStaysRefused() throws {
        _ = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        now = now.adding(milliseconds: 2_000)
        #expect(bridge.expire(now: now).packetsToSecondary.count == 1)
        let again = try secondary(Self.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        #expect(again.packetsToSecondary.first?.flags == [.rst, .ack])
        let (_, p) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(p.packetsToClient.isEmpty, "P's SYN waits for its own partner")
        #expect(bridge.counters.outboundPaired == 0)
    }

    @Test("alone, an outbound connection is the primary's own: it passes at once")
    mutating func aloneIsPlain() throws {
        _ = bridge.secondaryFailed(now: now)
        let (verdict, output) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn]))
        #expect(verdict == .pass && output.isEmpty)
    }

    @Test("a connection not selected passes as today; a protected port is never outbound")
    mutating func notSelected() throws {
        let (verdict, _) = try primary(Self.fromKernel(.primary, seq: 5000, flags: [.syn], remotePort: 5433))
        #expect(verdict == .pass)
        #expect(!Self.configuration.selectsOutbound(localPort: 9999, remoteAddress: Self.backEnd, remotePort: 5432))
        #expect(OutboundSelection("20") == .localPort(20))
        #expect(OutboundSelection("10.0.0.5:5432") == .remote(IPv4Address(10, 0, 0, 5), port: 5432))
        #expect(OutboundSelection("0") == nil && OutboundSelection("10.0.0.5") == nil)
        #expect(OutboundSelection("x:1") == nil && OutboundSelection("1:2:3") == nil)
    }
}

@Suite("Secondary bridge: connections its kernel opens (§7.2)")
struct SecondaryOutboundTests {
    typealias O = OutboundConnectionTests
    var bridge = SecondaryBridge(configuration: O.configuration)

    mutating func own(_ fields: TCPPacketFields) throws -> KernelVerdict {
        var bytes = try fields.build()
        return try bytes.withUnsafeMutableBytes { try bridge.ownKernelSegment(TCPPacket(validating: $0), now: .zero) }
    }

    mutating func captured(_ fields: TCPPacketFields) throws -> (CaptureVerdict, TCPPacketFields) {
        var bytes = try fields.build()
        let verdict = try bytes.withUnsafeMutableBytes {
            try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        return (verdict, try TCPPacketFields(parsing: bytes))
    }

    @Test("its kernel's SYN is relayed and tracked; T's segments are fed to it; the connection is inherited")
    mutating func relayedFedInherited() throws {
        // Before its kernel opened anything, T's segments to the service address make no state.
        let (stray, _) = try captured(O.fromRemote(seq: 700, ack: 9001, flags: [.syn, .ack]))
        #expect(stray == .ignore)
        #expect(bridge.counters.ignoredUnknownOutbound == 1)

        #expect(try own(O.fromKernel(.secondary, seq: 9000, flags: [.syn])) == .relayToPrimary)
        let (verdict, fed) = try captured(O.fromRemote(seq: 700, ack: 9001, flags: [.syn, .ack]))
        #expect(verdict == .inject)
        #expect(fed.destination == O.secondaryAddress && fed.destinationPort == O.secondaryPort)
        #expect(try own(O.fromKernel(.secondary, seq: 9001, ack: 701)) == .relayToPrimary)
        let key = ConnectionKey(clientAddress: O.backEnd, clientPort: O.remotePort, serverPort: O.secondaryPort)
        #expect(bridge.promote() == [key])
        #expect(bridge.serviceAddress(of: key) == O.service)
    }

    @Test("an outbound connection begun before the bridge (never seen opening) passes as it was, its SYN untracked")
    mutating func untrackedPasses() throws {
        #expect(try own(O.fromKernel(.secondary, seq: 9001, ack: 701, payload: [1])) == .pass)
        #expect(bridge.connections.isEmpty)
    }

    @Test("a reset the primary sends for an unpaired SYN reaches the kernel and the connection is not inherited")
    mutating func refusedIsNotInherited() throws {
        _ = try own(O.fromKernel(.secondary, seq: 9000, flags: [.syn]))
        var reset = try TCPPacketFields(
            source: O.backEnd,
            destination: O.secondaryAddress,
            sourcePort: O.remotePort,
            destinationPort: O.secondaryPort,
            sequenceNumber: SequenceNumber(0),
            acknowledgmentNumber: SequenceNumber(9001),
            flags: [.rst, .ack],
            window: 0,
            options: [],
            payload: []
        ).build()
        let verdict = try reset.withUnsafeMutableBytes { try bridge.packetFromPrimary(TCPPacket(validating: $0)) }
        #expect(verdict == .inject)
        #expect(bridge.promote().isEmpty)
    }
}
