import FTCPWire

@testable import FTCPBridge

/// A scripted exchange at the primary bridge with explicit sequence numbers,
/// in the style of the paper's figures: C is the client, P the primary's
/// kernel, S the secondary's kernel.
struct PrimaryScenario {
    static let clientAddress = IPv4Address(10, 80, 0, 10)
    static let serviceAddress = IPv4Address(10, 80, 0, 1)
    static let secondaryAddress = IPv4Address(10, 80, 0, 2)
    static let clientPort: UInt16 = 40_000
    static let serverPort: UInt16 = 9999

    var bridge: PrimaryBridge
    var now = MonotonicTime.seconds(1)
    let key = ConnectionKey(clientAddress: clientAddress, clientPort: clientPort, serverPort: serverPort)

    init(configuration: BridgeConfiguration? = nil) {
        bridge = PrimaryBridge(
            configuration: configuration
                ?? BridgeConfiguration(
                    serviceAddress: Self.serviceAddress,
                    secondaryAddress: Self.secondaryAddress,
                    protectedPorts: [Self.serverPort],
                    maximumQueuedBytesPerServer: 1 << 20
                )
        )
    }

    /// A segment from the client to the service.
    static func fromClient(
        seq: UInt32,
        ack: UInt32 = 0,
        flags: TCPFlags = [.ack],
        window: UInt16 = 1000,
        options: [TCPOption] = [],
        payload: [UInt8] = [],
        port: UInt16 = clientPort
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: clientAddress,
            destination: serviceAddress,
            sourcePort: port,
            destinationPort: serverPort,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack),
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    /// A segment a server's kernel sends to the client (P from the service
    /// address, S from its own).
    static func fromServer(
        _ role: ServerRole,
        seq: UInt32,
        ack: UInt32,
        flags: TCPFlags = [.ack],
        window: UInt16 = 1000,
        options: [TCPOption] = [],
        payload: [UInt8] = [],
        port: UInt16 = clientPort
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: role == .primary ? serviceAddress : secondaryAddress,
            destination: clientAddress,
            sourcePort: serverPort,
            destinationPort: port,
            sequenceNumber: SequenceNumber(seq),
            acknowledgmentNumber: SequenceNumber(ack),
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    /// Feeds a client segment; returns the bytes the primary's kernel receives (nil if dropped) and the output.
    @discardableResult
    mutating func client(_ fields: TCPPacketFields) throws -> (delivered: TCPPacketFields?, output: BridgeOutput) {
        var bytes = try fields.build()
        let now = self.now
        let (verdict, output) = try bytes.withUnsafeMutableBytes { buffer in
            try bridge.clientSegment(TCPPacket(validating: buffer), now: now)
        }
        switch verdict {
        case .drop: return (nil, output)
        case .accept: return (try TCPPacketFields(parsing: bytes), output)
        }
    }

    /// Feeds a segment from P's kernel.
    @discardableResult
    mutating func primary(_ fields: TCPPacketFields) throws -> BridgeOutput {
        var bytes = try fields.build()
        let now = self.now
        let (verdict, output) = try bytes.withUnsafeMutableBytes {
            try bridge.primaryKernelSegment(TCPPacket(validating: $0), now: now)
        }
        precondition(verdict == .consume, "a segment of a connection the bridge tracks is always consumed")
        return output
    }

    /// Feeds a segment from P's kernel for a connection the bridge may not know.
    mutating func primaryVerdict(_ fields: TCPPacketFields) throws -> PrimaryKernelVerdict {
        var bytes = try fields.build()
        let now = self.now
        return try bytes.withUnsafeMutableBytes {
            try bridge.primaryKernelSegment(TCPPacket(validating: $0), now: now).verdict
        }
    }

    /// Feeds a segment from S's kernel, as relayed by the secondary bridge.
    @discardableResult
    mutating func secondary(_ fields: TCPPacketFields) throws -> BridgeOutput {
        var bytes = try fields.build()
        let now = self.now
        return try bytes.withUnsafeMutableBytes {
            try bridge.secondaryKernelSegment(TCPPacket(validating: $0), now: now)
        }
    }

    var status: ConnectionStatus? { bridge.connectionStatuses.first { $0.key == key } }

    /// Runs the three-way handshake with plain options and the given ISNs;
    /// returns the SYN-ACK the client received.
    @discardableResult
    mutating func handshake(
        clientISN: UInt32 = 1000,
        primaryISN: UInt32,
        secondaryISN: UInt32,
        clientOptions: [TCPOption] = [.maximumSegmentSize(1460)],
        primaryOptions: [TCPOption] = [.maximumSegmentSize(1460)],
        secondaryOptions: [TCPOption] = [.maximumSegmentSize(1460)]
    ) throws -> TCPPacketFields? {
        try client(Self.fromClient(seq: clientISN, flags: [.syn], window: 64240, options: clientOptions))
        let p = try primary(
            Self.fromServer(
                .primary,
                seq: primaryISN,
                ack: clientISN &+ 1,
                flags: [.syn, .ack],
                window: 500,
                options: primaryOptions
            )
        )
        precondition(p.packetsToClient.isEmpty, "the primary's SYN-ACK must wait for the secondary's")
        let s = try secondary(
            Self.fromServer(
                .secondary,
                seq: secondaryISN,
                ack: clientISN &+ 1,
                flags: [.syn, .ack],
                window: 500,
                options: secondaryOptions
            )
        )
        try client(Self.fromClient(seq: clientISN &+ 1, ack: secondaryISN &+ 1))
        return s.packetsToClient.first
    }
}

extension PrimaryScenario {
    /// Another client connection, from client port `port`, through its whole handshake with
    /// plain options: client ISN 5000, P's 700, S's 900.
    mutating func openAnother(port: UInt16) throws {
        try client(Self.fromClient(seq: 5000, flags: [.syn], port: port))
        try primary(Self.fromServer(.primary, seq: 700, ack: 5001, flags: [.syn, .ack], port: port))
        try secondary(Self.fromServer(.secondary, seq: 900, ack: 5001, flags: [.syn, .ack], port: port))
        try client(Self.fromClient(seq: 5001, ack: 901, port: port))
    }
}

/// Payload bytes numbered like the paper's figures: byte n has value n (mod 256).
func numberedBytes(_ range: ClosedRange<UInt32>) -> [UInt8] {
    range.map { UInt8(truncatingIfNeeded: $0) }
}
