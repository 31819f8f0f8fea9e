import FTCPWire

#if canImport(Glibc)
    import Glibc
#endif

/// Fuzzes the pure bridge cores (`PrimaryBridge`, `SecondaryBridge`, compiled into this target
/// with the rest of Sources/FTCPBridge) as the daemons drive them: one primary and one secondary
/// fed a sequence of events decoded from the input — a client's segment (to both, or lost on
/// the way to one), a segment of the primary's kernel, a segment of the secondary's kernel
/// (relayed to the primary in the pieces the secondary cuts, or as digests of its bytes when
/// the secondary may digest it, or lost), time passing, the
/// secondary failing, joining or restarting, the primary failing (the secondary takes over),
/// releases, and segments that claim to come over the channel without passing the secondary.
///
/// Segments are built from small fields: three clients, two client ports, two protected ports
/// and an unprotected one, both service addresses, sequence numbers relative to fixed initial
/// sequence numbers (or to where each sender's stream stands), a few options. Both kernels send
/// the same byte at the same offset of their streams, so no divergence is expected unless the
/// input asks for a corrupted byte.
///
/// Neither core may trap, and after every event: the tables stay within their bounds, the
/// counters add up to the events fed, the retained bytes are what the flights hold and within
/// the limit, every packet the cores send builds (and checksums of packets rewritten in place
/// stay correct), and, while the servers' initial sequence numbers were the fixed ones and no
/// byte was corrupted, every byte the client receives is the byte of that stream offset (on a
/// connection whose SYN-ACK the client got from the secondary's fixed initial sequence number,
/// as long as no kernel sends data after a reset ended the connection, which a kernel cannot).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBridgeCores(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    var harness = BridgeHarness(configurationChoice: input.byte())
    var events = 0
    while !input.isExhausted && events < 400 {
        events += 1
        harness.step(&input)
        harness.relayWholeAsAsked()
        harness.checkInvariants()
    }
    harness.finish()
    return 0
}

/// With FTCP_FUZZ_TRACE set in the environment, every event and every packet to a client is
/// printed: run a crashing input that way to read what happened, packet by packet.
private let tracing = getenv("FTCP_FUZZ_TRACE") != nil

private func trace(_ line: @autoclosure () -> String) {
    guard tracing else { return }
    var text = line() + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

extension TCPPacketFields {
    fileprivate var summary: String {
        "\(source):\(sourcePort) > \(destination):\(destinationPort) flags \(flags.rawValue) seq \(sequenceNumber) "
            + "ack \(acknowledgmentNumber) win \(window) len \(payload.count) options \(options)"
    }
}

// MARK: - The cast

private enum Address {
    static let service = IPv4Address(10, 80, 0, 1)
    static let secondary = IPv4Address(10, 80, 0, 2)
    static let otherService = IPv4Address(10, 80, 0, 3)
    static let clients = [IPv4Address(10, 80, 0, 10), IPv4Address(10, 80, 0, 11), IPv4Address(192, 0, 2, 7)]
    static let stranger = IPv4Address(10, 80, 0, 99)
}

private let protectedPorts: Set<UInt16> = [9999, 80]
private let serverPorts: [UInt16] = [9999, 80, 22]
private let clientPorts: [UInt16] = [40_000, 40_001]

/// The fixed initial sequence numbers, and the stream offset every byte is a function of.
private enum Stream: Int {
    case client, primary, secondary

    var base: SequenceNumber {
        switch self {
        case .client: SequenceNumber(1_000)
        case .primary: SequenceNumber(0x5000_0000)
        case .secondary: SequenceNumber(0xFFFF_F000)  // wraps past 2^32 within a few kilobytes
        }
    }

    /// The byte each sender sends at `sequence` of its own space (the SYN takes `base`).
    func byte(at sequence: SequenceNumber) -> UInt8 {
        let offset = sequence.offset(from: base)
        return UInt8(truncatingIfNeeded: offset &* 7 &+ offset >> 8)
    }
}

private struct Endpoint: Hashable {
    var client: IPv4Address
    var clientPort: UInt16
    var serverPort: UInt16
    var service: IPv4Address

    var key: ConnectionKey { ConnectionKey(clientAddress: client, clientPort: clientPort, serverPort: serverPort) }
}

// MARK: - The harness

private struct BridgeHarness {
    let configuration: BridgeConfiguration
    var primary: PrimaryBridge
    var secondary: SecondaryBridge
    var now = MonotonicTime.seconds(10)

    /// How many times each entry point was called, to check the counters against.
    var clientSegments: UInt64 = 0
    var primarySegments: UInt64 = 0
    var secondarySegmentsAtPrimary: UInt64 = 0
    var captured: UInt64 = 0
    var ownKernel: UInt64 = 0
    var fromPrimary: UInt64 = 0
    var promotedCalls: UInt64 = 0

    /// Where each sender's stream stands per connection (the next sequence number it would use),
    /// and the highest sequence the bridge sent each client, for acknowledgments that make sense.
    var next: [Endpoint: [SequenceNumber]] = [:]
    var sentToClient: [ConnectionKey: SequenceNumber] = [:]
    /// Whether every byte sent to a client must be its stream's byte: on connections whose
    /// SYN-ACK the client got in the secondary's space from the fixed initial sequence number.
    var bytesAreChecked = true
    var checkedConnections: Set<ConnectionKey> = []
    /// The kernels that reset a connection (since its client's last SYN). A kernel sends nothing
    /// more on a connection it reset; when the fuzzer has it send data anyway, the bridge may
    /// forward it in whatever space it knows, and the connection's bytes are not checked.
    var resetBy: [ConnectionKey: Set<Int>] = [:]
    /// Connections whose primary replica was lost: the primary's daemon asks the secondary to
    /// relay them whole (done after the event, as the daemon does at the end of its turn).
    var toRelayWhole: [ConnectionKey] = []

    init(configurationChoice: UInt8) {
        configuration = BridgeConfiguration(
            serviceAddress: Address.service,
            additionalServiceAddresses: [Address.otherService],
            secondaryAddress: Address.secondary,
            protectedPorts: protectedPorts,
            maximumConnections: [2, 4, 16, 64][Int(configurationChoice & 3)],
            maximumQueuedBytesPerServer: [3_000, 20_000, 1 << 20, 100][Int(configurationChoice >> 2 & 3)],
            maximumRetainedBytes: [6_000, 200_000, 1 << 20, 0][Int(configurationChoice >> 4 & 3)],
            closedLingerMilliseconds: 2_000,
            handshakeTimeoutMilliseconds: 5_000,
            idleTimeoutMilliseconds: configurationChoice & 0x40 != 0 ? 30_000 : 600_000,
            // Same-length tolerance changes nothing while no byte was corrupted (both streams
            // are the same), and lets a corrupted run through only in the primary's version.
            divergencePolicy: configurationChoice & 0x80 != 0
                ? DivergencePolicy(defaultTolerance: .sameLength) : .strict,
            // Each relayed segment the secondary may digest goes as digests or whole, as the
            // input says (see `secondaryKernelSegment`).
            relaysDigests: true
        )
        primary = PrimaryBridge(configuration: configuration)
        secondary = SecondaryBridge(configuration: configuration)
    }

    mutating func step(_ input: inout FuzzInput) {
        let opcode = input.byte()
        trace("[\(now.nanoseconds / 1_000_000) ms] opcode \(opcode % 16)")
        switch opcode % 16 {
        case 0, 1, 2:
            let endpoint = decodeEndpoint(&input)
            let packet = decodeSegment(&input, from: .client, endpoint: endpoint)
            let route = input.byte() % 8
            clientSegment(packet, toPrimary: route != 6, toSecondary: route != 7)
        case 3, 4, 5:
            let endpoint = decodeEndpoint(&input)
            primaryKernelSegment(decodeSegment(&input, from: .primary, endpoint: endpoint))
        case 6, 7, 8:
            let endpoint = decodeEndpoint(&input)
            let packet = decodeSegment(&input, from: .secondary, endpoint: endpoint)
            let relay = input.byte()
            secondaryKernelSegment(
                packet,
                maximumPacketBytes: [nil, 1500, 600, 16_000, 100][Int(relay % 5)],
                digestPieces: relay & 0x80 != 0 ? nil : [1, 3, 83][Int(relay >> 5 & 3) % 3]
            )
        case 9:
            let milliseconds = UInt64(input.byte()) * [1, 10, 100, 1_000][Int(opcode >> 4 & 3)]
            now = now.adding(milliseconds: milliseconds)
            carryOut(primary.expire(now: now))
            secondary.expire(now: now, idleMilliseconds: configuration.idleTimeoutMilliseconds)
        case 10:
            switch (opcode >> 4) % 4 {
            case 0: carryOut(primary.secondaryFailed(now: now))
            case 1: primary.secondaryJoined()
            case 2: carryOut(primary.secondaryRestarted(now: now))
            default: secondary.release(primary.keysServedByPrimaryAlone)
            }
        case 11:
            // The primary failed: the secondary takes over and restarts the inherited flows.
            if opcode & 0x10 != 0 || secondary.isPromoted {
                let inherited = secondary.promote()
                for packet in secondary.restartPackets() {
                    checkRestartPacket(packet, inherited: inherited)
                }
                _ = secondary.inheritedClosing
            }
        case 12:
            // A forged relay: straight into the primary, as if it came over the channel.
            let endpoint = decodeEndpoint(&input)
            var bytes = build(decodeSegment(&input, from: .secondary, endpoint: endpoint))
            bytes.withUnsafeMutableBytes { buffer in
                guard let packet = try? TCPPacket(validating: buffer) else { return }
                secondarySegmentsAtPrimary += 1
                carryOut(primary.secondaryKernelSegment(packet, now: now))
            }
        case 13:
            let endpoint = decodeEndpoint(&input)
            var bytes = build(decodeSegment(&input, from: .primary, endpoint: endpoint))
            packetFromPrimary(&bytes)
        case 14:
            let keys = (0..<Int(input.byte() % 4)).map { _ in decodeEndpoint(&input).key }
            secondary.release(keys)
        default:
            readStatus()
        }
    }

    // MARK: Events

    mutating func clientSegment(_ fields: TCPPacketFields, toPrimary: Bool, toSecondary: Bool) {
        trace("client \(toPrimary ? "P" : "")\(toSecondary ? "S" : ""): \(fields.summary)")
        if fields.flags.contains(.syn) && !fields.flags.contains(.ack) {
            let key = ConnectionKey(
                clientAddress: fields.source,
                clientPort: fields.sourcePort,
                serverPort: fields.destinationPort
            )
            checkedConnections.remove(key)
            resetBy[key] = nil
        }
        let original = build(fields)
        // The primary's firewall queues only segments to a service address and a protected port.
        if toPrimary && configuration.serves(fields.destination) && protectedPorts.contains(fields.destinationPort) {
            var bytes = original
            bytes.withUnsafeMutableBytes { buffer in
                guard let packet = try? TCPPacket(validating: buffer) else { return }
                clientSegments += 1
                let (verdict, output) = primary.clientSegment(packet, now: now)
                if case .accept(modified: true) = verdict {
                    require(packet.isChecksumValid, "the primary's rewrite of a client segment broke its checksum")
                }
                if case .accept(modified: false) = verdict {
                    require(Array(buffer) == original, "a client segment passed as unmodified was changed")
                }
                carryOut(output)
            }
        }
        if toSecondary {
            var bytes = original
            bytes.withUnsafeMutableBytes { buffer in
                guard let packet = try? TCPPacket(validating: buffer) else { return }
                if secondary.isPromoted {
                    promotedCalls += 1
                    if secondary.promotedClientSegment(packet, now: now) {
                        require(packet.isChecksumValid, "a promoted client segment's rewrite broke its checksum")
                        require(packet.ip.destination == configuration.secondaryAddress)
                    }
                    return
                }
                captured += 1
                if secondary.capturedClientSegment(packet, now: now) == .inject {
                    require(packet.isChecksumValid, "an injected client segment carries a wrong checksum")
                    require(packet.ip.destination == configuration.secondaryAddress)
                }
            }
        }
    }

    mutating func primaryKernelSegment(_ fields: TCPPacketFields) {
        // The primary's firewall queues only its kernel's segments from a protected port.
        guard configuration.serves(fields.source) && protectedPorts.contains(fields.sourcePort) else { return }
        trace("primary kernel: \(fields.summary)")
        var bytes = build(fields)
        bytes.withUnsafeMutableBytes { buffer in
            guard let packet = try? TCPPacket(validating: buffer) else { return }
            primarySegments += 1
            let (_, output) = primary.primaryKernelSegment(packet, now: now)
            carryOut(output)
        }
    }

    /// A segment of the secondary's kernel, relayed as the secondary daemon does: as digests
    /// (in relays of at most `digestPieces` pieces) when the secondary may digest it and
    /// `digestPieces` is given, else whole, in pieces of at most `maximumPacketBytes`.
    mutating func secondaryKernelSegment(_ fields: TCPPacketFields, maximumPacketBytes: Int?, digestPieces: Int?) {
        trace("secondary kernel (relay \(maximumPacketBytes.map(String.init) ?? "MSS")): \(fields.summary)")
        var bytes = build(fields)
        var relayed: [[UInt8]] = []
        var digested: [DigestedRelay] = []
        bytes.withUnsafeMutableBytes { buffer in
            guard let packet = try? TCPPacket(validating: buffer) else { return }
            if secondary.isPromoted {
                promotedCalls += 1
                if secondary.promotedKernelSegment(packet, now: now) {
                    require(packet.isChecksumValid, "a promoted kernel segment's rewrite broke its checksum")
                }
                return
            }
            ownKernel += 1
            let digestible = secondary.isDigestible(packet)
            guard secondary.ownKernelSegment(packet, now: now) == .relayToPrimary else { return }
            if let digestPieces, digestible {
                digested = secondary.digestedRelay(packet, digester: PayloadDigest.fnv, maximumPieces: digestPieces)
                checkDigestedRelay(digested, of: packet)
                return
            }
            let pieces = secondary.relayPackets(packet, maximumPacketBytes: maximumPacketBytes)
            checkRelayedPieces(pieces, of: packet, maximumPacketBytes: maximumPacketBytes)
            relayed = pieces
        }
        for var piece in relayed {
            piece.withUnsafeMutableBytes { buffer in
                guard let packet = try? TCPPacket(validating: buffer) else {
                    fatalError("the secondary relays a packet that does not validate")
                }
                secondarySegmentsAtPrimary += 1
                carryOut(primary.secondaryKernelSegment(packet, now: now))
            }
        }
        feedDigested(digested)
    }

    /// Feeds the relays of a digested segment to the primary, as its daemon does.
    mutating func feedDigested(_ relays: [DigestedRelay]) {
        for relay in relays {
            var header = relay.header
            header.withUnsafeMutableBytes { buffer in
                guard let packet = try? TCPPacket(validating: buffer) else {
                    fatalError("the secondary digests under a header that does not validate")
                }
                trace(
                    "  digested: seq \(packet.tcp.sequenceNumber) len \(relay.payloadLength) pieces \(relay.digests.count)"
                )
                secondarySegmentsAtPrimary += 1
                carryOut(
                    primary.secondaryDigestedSegment(
                        packet,
                        payloadLength: relay.payloadLength,
                        pieceLength: relay.pieceLength,
                        digests: relay.digests,
                        now: now
                    )
                )
            }
        }
    }

    /// The relays of a digested segment cover its bytes, in order, each piece's digest that of
    /// its bytes, no relay with more pieces than asked.
    func checkDigestedRelay(_ relays: [DigestedRelay], of packet: TCPPacket) {
        let payload = Array(UnsafeRawBufferPointer(packet.tcp.payload))
        var offset = 0
        for relay in relays {
            guard let header = try? TCPPacketFields(parsing: relay.header) else {
                fatalError("a digested relay's header does not parse")
            }
            require(header.payload.isEmpty && header.sequenceNumber == packet.tcp.sequenceNumber + UInt32(offset))
            require(relay.digests.count == (relay.payloadLength + relay.pieceLength - 1) / relay.pieceLength)
            for (index, digest) in relay.digests.enumerated() {
                let start = offset + index * relay.pieceLength
                let end = min(start + relay.pieceLength, offset + relay.payloadLength)
                require(payload[start..<end].withUnsafeBytes { PayloadDigest.fnv($0) } == digest, "a wrong digest")
            }
            offset += relay.payloadLength
        }
        require(offset == payload.count, "digested relays cover \(offset) of \(payload.count) bytes")
    }

    mutating func relayWholeAsAsked() {
        while !toRelayWhole.isEmpty {
            let keys = toRelayWhole
            toRelayWhole = []
            relayWhole(keys)
        }
    }

    /// What the daemons do when the primary lost its replica of a connection the secondary
    /// relays as digests: the secondary relays it whole again and resends what the client has
    /// not acknowledged.
    mutating func relayWhole(_ keys: [ConnectionKey]) {
        guard !keys.isEmpty, !secondary.isPromoted else { return }
        for var packet in secondary.relayWhole(keys) {
            packet.withUnsafeMutableBytes { buffer in
                guard let view = try? TCPPacket(validating: buffer) else {
                    fatalError("the secondary resends a packet that does not validate")
                }
                secondarySegmentsAtPrimary += 1
                carryOut(primary.secondaryKernelSegment(view, now: now))
            }
        }
    }

    mutating func packetFromPrimary(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            guard let packet = try? TCPPacket(validating: buffer) else { return }
            fromPrimary += 1
            _ = secondary.packetFromPrimary(packet)
        }
    }

    /// What the primary's daemon does with an output: packets to clients go out (coalesced),
    /// packets for the secondary's kernel go over the channel.
    mutating func carryOut(_ output: BridgeOutput) {
        for event in output.events {
            if case .divergence = event {
                require(!bytesAreChecked, "a divergence between servers that sent the same bytes")
            }
        }
        for event in output.events {
            trace("  event \(event)")
            if case let .replicaLost(key, .primary, _) = event { toRelayWhole.append(key) }
            // A reset the bridge accepted ended the connection in both kernels too.
            if case let .connectionClosed(key, reason) = event, reason != .finished {
                resetBy[key, default: []].formUnion([Stream.primary.rawValue, Stream.secondary.rawValue])
            }
        }
        for packet in output.packetsToClient {
            trace("  to client: \(packet.summary)")
            let key = ConnectionKey(
                clientAddress: packet.destination,
                clientPort: packet.destinationPort,
                serverPort: packet.sourcePort
            )
            if packet.flags.contains(.syn) {
                if packet.sequenceNumber == Stream.secondary.base {
                    checkedConnections.insert(key)
                } else {
                    checkedConnections.remove(key)
                }
            }
            checkToClient(packet, checked: checkedConnections.contains(key))
            let end = packet.sequenceNumber + packet.sequenceLength
            if sentToClient[key].map({ $0 < end }) ?? true { sentToClient[key] = end }
        }
        checkCoalescing(output.packetsToClient)
        for packet in output.packetsToSecondary {
            var bytes = build(packet)
            packetFromPrimary(&bytes)
        }
    }

    // MARK: Checks

    func checkToClient(_ packet: TCPPacketFields, checked: Bool) {
        require(configuration.serves(packet.source), "a packet to a client from \(packet.source)")
        require(protectedPorts.contains(packet.sourcePort), "a packet to a client from port \(packet.sourcePort)")
        guard let bytes = try? packet.build() else { fatalError("a packet for a client does not build: \(packet)") }
        require((try? TCPPacketFields(parsing: bytes)) == packet, "a packet for a client does not read back")
        guard bytesAreChecked, checked, !packet.flags.contains(.syn), !packet.payload.isEmpty else { return }
        for (index, byte) in packet.payload.enumerated() {
            let sequence = packet.sequenceNumber + UInt32(index)
            require(byte == Stream.secondary.byte(at: sequence), "the client got a wrong byte at \(sequence)")
        }
    }

    /// The pieces a relayed segment is cut into are the segment's bytes, in order.
    func checkRelayedPieces(_ pieces: [[UInt8]], of packet: TCPPacket, maximumPacketBytes: Int?) {
        let whole = TCPPacketFields(parsing: packet)
        guard pieces.count > 1 else {
            require(pieces == [Array(packet.bytes)], "a segment that fits was relayed changed")
            return
        }
        var payload: [UInt8] = []
        for piece in pieces {
            guard let fields = try? TCPPacketFields(parsing: piece) else {
                fatalError("a relayed piece does not parse")
            }
            if let maximumPacketBytes, whole.tcpHeaderLength + 20 < maximumPacketBytes {
                require(piece.count <= maximumPacketBytes, "a relayed piece of \(piece.count) bytes")
            }
            // A SYN takes one sequence number before the data, on the first piece only.
            let synLength: UInt32 = whole.flags.contains(.syn) && !payload.isEmpty ? 1 : 0
            require(
                fields.sequenceNumber == whole.sequenceNumber + synLength + UInt32(payload.count),
                "relayed pieces not in order"
            )
            payload += fields.payload
        }
        require(payload == whole.payload, "the relayed pieces do not add up to the segment")
    }

    func checkRestartPacket(_ bytes: [UInt8], inherited: Set<ConnectionKey>) {
        guard let fields = try? TCPPacketFields(parsing: bytes) else { fatalError("a restart packet does not parse") }
        var copy = bytes
        let valid = copy.withUnsafeMutableBytes { (try? TCPPacket(validating: $0))?.isChecksumValid }
        require(valid == true, "a restart packet carries a wrong checksum")
        let key = ConnectionKey(
            clientAddress: fields.destination,
            clientPort: fields.destinationPort,
            serverPort: fields.sourcePort
        )
        require(inherited.contains(key), "a restart packet for a connection not inherited")
        require(fields.source == secondary.serviceAddress(of: key), "a restart packet from the wrong address")
        guard bytesAreChecked, !fields.flags.contains(.syn) else { return }
        for (index, byte) in fields.payload.enumerated() {
            let sequence = fields.sequenceNumber + UInt32(index)
            require(byte == Stream.secondary.byte(at: sequence), "a restart packet resends a wrong byte")
        }
    }

    /// The daemon coalesces what goes to clients: cut again, the super-segments are the packets.
    func checkCoalescing(_ packets: [TCPPacketFields]) {
        guard packets.count > 1 else { return }
        let pieces = SegmentCoalescing.coalesce(packets).flatMap(\.pieces)
        require(pieces.count == packets.count, "coalescing changed the number of packets to clients")
        for (piece, packet) in zip(pieces, packets) {
            require(piece.sequenceNumber == packet.sequenceNumber && piece.payload == packet.payload)
        }
    }

    /// The bounds and bookkeeping that must hold after every event.
    func checkInvariants() {
        // Primary: the table and its side tables stay bounded; each queue within its capacity.
        require(primary.connectionCount <= configuration.maximumConnections, "the primary's table overflowed")
        require(primary.earlySecondarySYNACKs.count <= PrimaryBridge.earlySYNACKLimit)
        for key in primary.heldPrimarySYNACKs.keys {
            require(primary.connections[key] != nil, "a primary SYN-ACK held for a connection no longer tracked")
        }
        for connection in primary.connections.values {
            for stream in [connection.primary, connection.secondary] {
                require(stream.pending.count >= 0 && stream.pending.count <= configuration.maximumQueuedBytesPerServer)
                require(stream.pending.contiguousCount <= stream.pending.count)
            }
        }
        let counters = primary.counters
        require(counters.segmentsFromClient == clientSegments && counters.segmentsFromPrimary == primarySegments)
        require(counters.segmentsFromSecondary == secondarySegmentsAtPrimary)
        let protection = primary.protectionCounts
        require(protection.protected + protection.unprotected == primary.openConnectionCount)
        require(primary.openConnectionCount <= primary.connectionCount)

        // Secondary: the table bounded, the retained bytes what the flights hold, within the limit.
        require(secondary.connectionCount <= configuration.maximumConnections, "the secondary's table overflowed")
        let held = secondary.flights.values.reduce(0) { $0 + $1.retainedBytes }
        require(secondary.retainedBytes == held, "retained bytes \(secondary.retainedBytes), flights hold \(held)")
        require(held <= configuration.maximumRetainedBytes, "retained \(held) bytes past the limit")
        for flight in secondary.flights.values {
            require(flight.retainedBytes <= configuration.maximumQueuedBytesPerServer)
        }
        let s = secondary.counters
        let capturedCounted =
            s.injected + s.ignoredNotForService + s.ignoredUnprotectedPort + s.ignoredFromServers
            + s.ignoredCollidingAddress
        require(capturedCounted == captured, "captured segments counted \(capturedCounted), fed \(captured)")
        require(s.relayed + s.passedUnprotected == ownKernel, "kernel segments not counted once")
        require(s.injectedFromPrimary + s.refusedFromPrimary == fromPrimary)
        require(s.promotedTranslatedIn + s.promotedTranslatedOut + s.promotedPassed == promotedCalls)
    }

    mutating func readStatus() {
        let statuses = primary.connectionStatuses
        require(statuses.count == primary.connectionCount)
        for status in statuses {
            require(status.queuedPrimaryBytes <= configuration.maximumQueuedBytesPerServer)
            _ = primary.isReplicated(status.key)
        }
        let connections = secondary.connections
        require(connections.count == secondary.connectionCount)
        for (key, _) in connections {
            require(secondary.clientMaximumSegmentSize(key) >= BridgeConfiguration.minimumClientSegmentSize)
        }
    }

    mutating func finish() {
        readStatus()
        let inherited = secondary.promote()
        for packet in secondary.restartPackets() { checkRestartPacket(packet, inherited: inherited) }
        checkInvariants()
    }

    // MARK: Decoding

    func decodeEndpoint(_ input: inout FuzzInput) -> Endpoint {
        let choice = input.byte()
        let client =
            Int(choice & 3) < 3
            ? Address.clients[Int(choice & 3)]
            : input.pick([
                Address.service, Address.secondary, Address.stranger,
            ])
        return Endpoint(
            client: client,
            clientPort: clientPorts[Int(choice >> 2 & 1)],
            serverPort: choice >> 3 & 3 == 3 ? serverPorts[2] : serverPorts[Int(choice >> 3 & 1)],
            service: choice >> 5 & 3 == 3
                ? Address.stranger : choice & 0x80 != 0 ? Address.otherService : Address.service
        )
    }

    /// A segment from `sender`'s side of `endpoint`'s connection.
    mutating func decodeSegment(_ input: inout FuzzInput, from sender: Stream, endpoint: Endpoint) -> TCPPacketFields {
        let shape = input.byte()
        let flags: TCPFlags =
            switch shape & 15 {
            case 0, 1, 2, 3, 4: [.ack]
            case 5, 6: [.ack, .psh]
            case 7: sender == .client ? [.syn] : [.syn, .ack]
            case 8: [.ack, .fin]
            case 9: [.rst]
            case 10: [.rst, .ack]
            case 11: [.syn]
            case 12: [.ack, .urg]
            default: TCPFlags(rawValue: input.byte())
            }
        let streams = next[endpoint] ?? [Stream.client.base, Stream.primary.base, Stream.secondary.base]
        let sequence = decodeSequence(&input, sender: sender, isSYN: flags.contains(.syn), at: streams[sender.rawValue])
        let acknowledgment = decodeAcknowledgment(&input, sender: sender, endpoint: endpoint, streams: streams)
        let lengthChoice = input.byte()
        let length =
            switch lengthChoice >> 6 {
            case 0: 0
            case 1: Int(lengthChoice & 63)
            case 2: Int(lengthChoice & 63) * 25
            default: Int(lengthChoice & 63) * 250
            }
        let firstByte = flags.contains(.syn) ? sequence + 1 : sequence
        var payload = (0..<length).map { sender.byte(at: firstByte + UInt32($0)) }
        let corruption = input.byte()
        if corruption == 0xFF, !payload.isEmpty {
            payload[payload.count / 2] ^= 0x5A
            if sender != .client { bytesAreChecked = false }
        }
        let window = [UInt16(1000), 65_535, 0, 200][Int(shape >> 4 & 3)] &+ UInt16(corruption & 0x0F)
        let options = decodeOptions(&input, streams: streams)
        let isSYNFromServer = sender != .client && flags.contains(.syn)
        if isSYNFromServer && sequence != sender.base { bytesAreChecked = false }
        if sender != .client {
            if !payload.isEmpty && resetBy[endpoint.key]?.contains(sender.rawValue) == true {
                checkedConnections.remove(endpoint.key)
            }
            if flags.contains(.rst) { resetBy[endpoint.key, default: []].insert(sender.rawValue) }
        }

        var streamsAfter = streams
        let end = sequence + UInt32(payload.count) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
        if streamsAfter[sender.rawValue] < end { streamsAfter[sender.rawValue] = end }
        next[endpoint] = streamsAfter

        let fromServer: IPv4Address =
            sender == .secondary ? (shape & 0x40 != 0 ? Address.service : Address.secondary) : endpoint.service
        return TCPPacketFields(
            source: sender == .client ? endpoint.client : fromServer,
            destination: sender == .client ? endpoint.service : endpoint.client,
            sourcePort: sender == .client ? endpoint.clientPort : endpoint.serverPort,
            destinationPort: sender == .client ? endpoint.serverPort : endpoint.clientPort,
            sequenceNumber: sequence,
            acknowledgmentNumber: acknowledgment,
            flags: flags,
            window: window,
            urgentPointer: flags.contains(.urg) ? UInt16(lengthChoice) : 0,
            options: options,
            payload: payload,
            timeToLive: 64 - (shape >> 7)
        )
    }

    func decodeSequence(_ input: inout FuzzInput, sender: Stream, isSYN: Bool, at next: SequenceNumber)
        -> SequenceNumber
    {
        if isSYN, sender != .client { return input.byte() < 240 ? sender.base : sender.base + UInt32(input.byte()) }
        let choice = input.byte()
        switch choice & 7 {
        case 0, 1, 2: return next
        case 3: return next - UInt32(choice >> 3) * 37
        case 4: return sender.base + UInt32(input.uint16())
        case 5: return next + (UInt32(0x8000_0000) &+ UInt32(choice >> 3) &- 16)
        case 6: return next + UInt32(choice >> 3) * 100
        default: return SequenceNumber(input.uint32())
        }
    }

    func decodeAcknowledgment(
        _ input: inout FuzzInput,
        sender: Stream,
        endpoint: Endpoint,
        streams: [SequenceNumber]
    ) -> SequenceNumber {
        let choice = input.byte()
        // What the receiving side has sent: the client receives in the secondary's space; the
        // servers receive the client's stream.
        let received: SequenceNumber
        if sender == .client {
            received = sentToClient[endpoint.key] ?? Stream.secondary.base + 1
        } else {
            received = streams[Stream.client.rawValue]
        }
        switch choice & 7 {
        case 0, 1, 2, 3: return received
        case 4: return received - UInt32(choice >> 3) * 50
        case 5: return received + UInt32(choice >> 3) * 50
        case 6: return sender == .client ? Stream.primary.base + UInt32(choice >> 3) : received
        default: return SequenceNumber(input.uint32())
        }
    }

    func decodeOptions(_ input: inout FuzzInput, streams: [SequenceNumber]) -> [TCPOption] {
        let choice = input.byte()
        var options: [TCPOption] = []
        if choice & 1 != 0 {
            options.append(.maximumSegmentSize([1460, 536, 1, 65_535, 100, 9000, 1400, 0][Int(input.byte() & 7)]))
        }
        if choice & 2 != 0 { options += [.noOperation, .windowScale(input.byte() % 16)] }
        if choice & 4 != 0 { options.append(.sackPermitted) }
        if choice & 8 != 0 {
            options += [.noOperation, .noOperation, .timestamps(value: input.uint32(), echoReply: input.uint32())]
        }
        if choice & 16 != 0 {
            let base = streams[Int(choice >> 6) % 3]
            let blocks = (0..<Int(input.byte() % 3 + 1)).map { _ in
                let left = base + UInt32(input.uint16())
                return SACKBlock(left: left, right: left + UInt32(input.byte()) + 1)
            }
            options += [.noOperation, .noOperation, .sack(blocks)]
        }
        if choice & 32 != 0 { options.append(.unknown(kind: 30, data: input.bytes(Int(input.byte() % 6)))) }
        // Keep to the 40 bytes of option space: drop from the end until the rest fits.
        while options.reduce(0, { $0 + $1.encodedLength }) > 40 { options.removeLast() }
        return options
    }

    func build(_ fields: TCPPacketFields) -> [UInt8] {
        guard let bytes = try? fields.build() else { fatalError("a decoded segment does not build: \(fields)") }
        return bytes
    }
}
