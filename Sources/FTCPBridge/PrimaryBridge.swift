import FTCPWire

/// The primary bridge's core: the table of protected connections and the
/// rules for every segment that passes the primary (paper §3, §4, §7, §8).
///
/// Pure: no I/O, no clock. The shell calls one method per intercepted
/// segment, passing the time, and carries out the returned `BridgeOutput`.
/// Segments from the primary's own kernel for a replicated connection are
/// consumed (the shell drops them from the kernel's path): what reaches the
/// client is only what the output lists.
public struct PrimaryBridge: Sendable {
    public let configuration: BridgeConfiguration
    var connections: [ConnectionKey: MergedConnection] = [:]
    public internal(set) var counters = PrimaryCounters()

    /// SYN-ACKs of the secondary that arrived before the client's SYN did.
    var earlySecondarySYNACKs: [ConnectionKey: (bytes: [UInt8], at: MonotonicTime)] = [:]
    /// The primary's SYN-ACKs of connections still in their handshake.
    var heldPrimarySYNACKs: [ConnectionKey: TCPPacketFields] = [:]
    static let earlySYNACKLimit = 1024
    /// Which entry a full table gives up for a new connection.
    var eviction = EvictionOrder<ConnectionKey>()
    /// Outbound SYNs (§7.2) waiting for the other kernel's.
    var outboundWaiting = OutboundPairing(limit: PrimaryBridge.outboundAloneLimit)
    /// Each merged outbound connection's key in the primary's kernel (its own local port) to
    /// the key the remote end knows (the secondary kernel's port).
    var outboundKeys: [ConnectionKey: ConnectionKey] = [:]
    /// The primary kernel's outbound connections that went out alone, unprotected (no partner,
    /// or no secondary): their retransmitted SYNs pass too, and are not paired again.
    var outboundAlone: [ConnectionKey: MonotonicTime] = [:]
    /// The secondary kernel's outbound SYNs refused (no partner), by the key the remote end would
    /// have known, with their ISN: their retransmissions are refused again, never paired.
    var refusedSecondarySYNs: [ConnectionKey: (sequence: SequenceNumber, at: MonotonicTime)] = [:]
    static let outboundAloneLimit = 1024

    /// How the secondary's digested bytes are checked against the primary's (`--relay digests`):
    /// the daemon gives SHA-256.
    public let digester: PayloadDigester

    public init(configuration: BridgeConfiguration, digester: @escaping PayloadDigester = PayloadDigest.fnv) {
        self.configuration = configuration
        self.digester = digester
    }

    /// A segment the primary's own kernel sent to a client on a protected port.
    ///
    /// `.pass` is for connections the bridge never saw begin (established
    /// before it started, or already forgotten): their only sequence space is
    /// the primary's own, so the segment goes out unchanged and the
    /// connection is not protected.
    public mutating func primaryKernelSegment(_ packet: TCPPacket, now: MonotonicTime) -> (
        verdict: PrimaryKernelVerdict, output: BridgeOutput
    ) {
        counters.segmentsFromPrimary += 1
        if configuration.selectsOutbound(
            localPort: packet.tcp.sourcePort,
            remoteAddress: packet.ip.destination,
            remotePort: packet.tcp.destinationPort
        ) {
            return primaryOutboundSegment(packet, now: now)
        }
        var output = BridgeOutput()
        let key = ConnectionKey(serverSegment: packet)
        guard connections[key]?.serviceAddress == packet.ip.source else {
            counters.passedUnprotectedFromPrimary += 1
            return (.pass, output)
        }
        if connections[key]!.phase == .handshake && packet.tcp.flags.contains([.syn, .ack]) {
            // Kept whole: if the secondary refuses the client, this goes out as it is.
            heldPrimarySYNACKs[key] = TCPPacketFields(parsing: packet)
        }
        updateConnection(key) { $0.primarySegment(packet.tcp, now: now, into: &output) }
        forgetIfRefusedBySecondary(key, into: &output)
        return (.consume, output)
    }

    /// A segment the secondary's kernel sent to a client, relayed by its bridge.
    public mutating func secondaryKernelSegment(_ packet: TCPPacket, now: MonotonicTime) -> BridgeOutput {
        var output = BridgeOutput()
        counters.segmentsFromSecondary += 1
        let key = ConnectionKey(serverSegment: packet)
        if configuration.selectsOutbound(
            localPort: key.serverPort,
            remoteAddress: key.clientAddress,
            remotePort: key.clientPort
        ) {
            secondaryOutboundSegment(packet, key: key, now: now, into: &output)
            return output
        }
        guard configuration.protectedPorts.contains(key.serverPort) else {
            counters.droppedUnprotectedFromSecondary += 1
            return output
        }
        guard connections[key] != nil else {
            // The secondary's SYN-ACK can overtake the client's SYN on its way through this
            // host's queue; keep it until the SYN shows up instead of waiting for a retransmission.
            if packet.tcp.flags.contains([.syn, .ack]) && earlySecondarySYNACKs.count < Self.earlySYNACKLimit {
                earlySecondarySYNACKs[key] = (Array(packet.bytes), now)
                counters.heldEarlySYNACKs += 1
            } else {
                counters.droppedUnknownFromSecondary += 1
            }
            return output
        }
        updateConnection(key) { $0.secondarySegment(packet.tcp, now: now, into: &output) }
        forgetIfRefusedBySecondary(key, into: &output)
        if connections[key]?.phase != .handshake { heldPrimarySYNACKs[key] = nil }
        return output
    }

    /// A segment of the secondary's kernel relayed as its header and digests of its
    /// `payloadLength` bytes, one per piece of `pieceLength` (`--relay digests`). Only for an
    /// inbound connection the bridge merges: anything else (a header with bytes, a SYN, an
    /// outbound or unknown connection, digests that do not cover the bytes) is counted and
    /// dropped; its bytes come again whole in the kernel's retransmission.
    public mutating func secondaryDigestedSegment(
        _ packet: TCPPacket,
        payloadLength: Int,
        pieceLength: Int,
        digests: [PayloadDigest],
        now: MonotonicTime
    ) -> BridgeOutput {
        var output = BridgeOutput()
        counters.segmentsFromSecondary += 1
        let key = ConnectionKey(serverSegment: packet)
        guard packet.tcp.payloadLength == 0, payloadLength > 0, pieceLength > 0,
            digests.count == (payloadLength + pieceLength - 1) / pieceLength, !packet.tcp.flags.contains(.syn),
            configuration.protectedPorts.contains(key.serverPort), connections[key] != nil
        else {
            counters.droppedDigestsFromSecondary += 1
            return output
        }
        updateConnection(key) {
            $0.secondaryDigestedSegment(
                packet.tcp,
                payloadLength: payloadLength,
                pieceLength: pieceLength,
                digests: digests,
                now: now,
                into: &output
            )
        }
        return output
    }

    /// The secondary's kernel reset the client's SYN (its application is not listening,
    /// for example because it died): the connection is the primary's alone, in its own
    /// sequence space (Δ = 0), so the bridge forgets it. The primary's SYN-ACK, if it came
    /// already, goes out as it is; if not, it passes when it comes.
    private mutating func forgetIfRefusedBySecondary(_ key: ConnectionKey, into output: inout BridgeOutput) {
        guard let connection = connections[key], connection.phase == .handshake,
            connection.secondaryRefusedHandshake
        else { return }
        connections[key] = nil
        counters.refusedBySecondary += 1
        if let held = heldPrimarySYNACKs.removeValue(forKey: key) {
            output.send(held, connection: key)
        } else if connection.primaryRefusedHandshake {
            // Both kernels refused: the client learns it as it would from one server.
            output.send(
                TCPPacketFields(
                    source: connection.serviceAddress,
                    destination: key.clientAddress,
                    sourcePort: key.serverPort,
                    destinationPort: key.clientPort,
                    sequenceNumber: SequenceNumber(0),
                    acknowledgmentNumber: connection.client.initialSequence + 1,
                    flags: [.rst, .ack],
                    window: 0,
                    options: [],
                    payload: []
                ),
                connection: key
            )
        }
    }

    /// A segment from a client to the service. It is rewritten in place for
    /// the primary's kernel; the result says whether to pass it on.
    public mutating func clientSegment(_ packet: TCPPacket, now: MonotonicTime) -> (
        verdict: ClientVerdict, output: BridgeOutput
    ) {
        var output = BridgeOutput()
        counters.segmentsFromClient += 1
        let tcp = packet.tcp
        let key = ConnectionKey(clientSegment: packet)
        if configuration.selectsOutbound(
            localPort: tcp.destinationPort,
            remoteAddress: packet.ip.source,
            remotePort: tcp.sourcePort
        ) {
            return remoteSegment(packet, key: key, now: now)
        }
        let flags = tcp.flags
        let isNewSYN = flags.contains(.syn) && !flags.contains(.ack)
        let service = packet.ip.destination
        if isNewSYN, let existing = connections[key], existing.serviceAddress != service, existing.phase != .closed {
            // The same client endpoint and port on another service address, still open: both
            // would be the one socket in the secondary's kernel (which knows them under its own
            // address), so this one is the primary's alone, unprotected; the secondary's bridge
            // does not feed its SYN to its kernel either.
            counters.passedCollidingAddress += 1
            output.event(.collidingServiceAddress(key, served: existing.serviceAddress, refused: service))
            return (.accept(modified: false), output)
        }
        if isNewSYN, let existing = connections[key], existing.phase != .closed, existing.client.acknowledged != nil,
            existing.client.initialSequence != tcp.sequenceNumber
        {
            // RFC 5961 §4: a SYN on an established connection does not replace it. Each kernel
            // answers with a challenge ACK; a client that really lost the connection answers
            // that with a reset in the window, which ends it, and its SYN then begins a new one.
            counters.synOnEstablished += 1
            return (.accept(modified: false), output)
        }
        if isNewSYN && isAlone {
            // Alone, a new connection is the primary's own: nothing to merge or translate
            // (and an old tombstone with the same ports must not translate it, nor its held
            // SYN-ACK go out for a later connection).
            connections[key] = nil
            heldPrimarySYNACKs[key] = nil
            counters.passedUnknownFromClient += 1
            return (.accept(modified: false), output)
        }
        if isNewSYN {
            if let existing = connections[key], existing.phase != .closed,
                existing.serviceAddress == service, existing.client.initialSequence == tcp.sequenceNumber
            {
                return (.accept(modified: false), output)  // a retransmitted SYN
            }
            if connections[key] == nil && connections.count >= configuration.maximumConnections
                && !makeRoom(now: now)
            {
                counters.droppedTableFull += 1
                output.event(.tableFull(key, limit: configuration.maximumConnections))
                return (.drop, output)
            }
            // Both kernels (the secondary's bridge does the same) never cut this client's
            // bytes finer than the floor.
            let clamped = BridgeConfiguration.raiseMaximumSegmentSize(of: tcp)
            var connection = MergedConnection(
                key: key,
                serviceAddress: service,
                clientSYN: tcp,
                capacity: configuration.maximumQueuedBytesPerServer,
                now: now
            )
            connection.toleratesSameLength =
                configuration.divergencePolicy.tolerance(forPort: key.serverPort) == .sameLength
            connection.digester = digester
            if var early = earlySecondarySYNACKs.removeValue(forKey: key)?.bytes {
                early.withUnsafeMutableBytes { buffer in
                    if let view = try? TCPPacket(validating: buffer),
                        view.tcp.acknowledgmentNumber == tcp.sequenceNumber + 1
                    {
                        connection.secondarySegment(view.tcp, now: now, into: &output)
                    }
                }
            }
            connections[key] = connection
            return (.accept(modified: clamped), output)
        }
        guard connections[key]?.serviceAddress == service else {
            counters.passedUnknownFromClient += 1
            return (.accept(modified: false), output)
        }
        let modified = updateConnection(key) { $0.clientSegment(packet, now: now, into: &output) }
        if connections[key]!.phase == .secondaryOnly {
            // The primary's kernel has no part in it any more (it would only answer with resets).
            counters.droppedForSecondaryOnly += 1
            return (.drop, output)
        }
        return (.accept(modified: modified), output)
    }

    /// Bytes all connections' queues hold, waiting for the other server's copy (exact after each
    /// segment; a connection forgotten between two `expire` calls may still be counted until
    /// the next, which only errs on the side of the cap).
    public internal(set) var queuedBytes = 0

    /// Runs `body` on the connection under `key` with the room the bridge-wide queue cap leaves
    /// it, and keeps ``queuedBytes`` current.
    mutating func updateConnection<T>(_ key: ConnectionKey, _ body: (inout MergedConnection) -> T) -> T {
        let before = connections[key]!.queuedBytes
        connections[key]!.queueRoom = configuration.maximumQueuedBytesTotal - queuedBytes
        let result = body(&connections[key]!)
        queuedBytes += (connections[key]?.queuedBytes ?? 0) - before
        return result
    }

    /// Gives up the oldest evictable entry (see ``EvictionOrder``); false if none may go.
    mutating func makeRoom(now: MonotonicTime) -> Bool {
        guard
            let victim = eviction.next(
                in: connections,
                now: now,
                evictableSince: { $0.isEvictable ? $0.phaseSince : nil }
            )
        else { return false }
        let removed = connections.removeValue(forKey: victim)
        queuedBytes -= removed?.queuedBytes ?? 0
        if let removed, removed.opensOutbound {
            outboundKeys[
                ConnectionKey(
                    clientAddress: victim.clientAddress,
                    clientPort: victim.clientPort,
                    serverPort: removed.primaryKernelPort
                )
            ] = nil
        }
        if removed?.phase == .closed {
            counters.evictedClosed += 1
        } else {
            counters.evictedHandshakes += 1
        }
        heldPrimarySYNACKs[victim] = nil
        return true
    }

    /// Whether the primary serves alone (no secondary, or it failed).
    public private(set) var isAlone = false

    /// The secondary failed (or never came): every replicated connection goes
    /// on with the primary alone (what it held goes out now; Δ and Δts still
    /// apply). Handshakes that were waiting for the secondary are forgotten,
    /// and the primary's SYN-ACK, if it came, goes out unchanged (Δ = 0); new
    /// connections are not tracked at all while alone.
    public mutating func secondaryFailed(now: MonotonicTime) -> BridgeOutput {
        var output = BridgeOutput()
        isAlone = true
        endReplicaOfTheSecondary(into: &output)
        return output
    }

    /// A secondary speaks (again, or for the first time): connections whose
    /// handshake begins from now on are replicated. Those served alone stay so.
    public mutating func secondaryJoined() {
        isAlone = false
    }

    /// The secondary's bridge restarted (a new epoch on the channel) while this one counted
    /// it alive: what it replicated before is gone with its old process, so those connections
    /// go on with the primary alone; new ones are replicated.
    public mutating func secondaryRestarted(now: MonotonicTime) -> BridgeOutput {
        var output = BridgeOutput()
        endReplicaOfTheSecondary(into: &output)
        return output
    }

    private mutating func endReplicaOfTheSecondary(into output: inout BridgeOutput) {
        for waiting in outboundWaiting.removeAll() where waiting.role == .primary {
            serveOutboundAlone(waiting.syn, now: waiting.syn.since, into: &output)
        }
        for key in Array(connections.keys) {
            guard let phase = connections[key]?.phase else { continue }
            if phase == .handshake && !connections[key]!.opensOutbound {
                connections[key] = nil
                if let held = heldPrimarySYNACKs.removeValue(forKey: key) { output.send(held, connection: key) }
                continue
            }
            updateConnection(key) { $0.secondaryFailed(into: &output) }
        }
    }

    /// Expires handshakes that never completed, closed connections whose
    /// linger ended, and connections idle past the idle timeout.
    public mutating func expire(now: MonotonicTime) -> BridgeOutput {
        var output = BridgeOutput()
        earlySecondarySYNACKs = earlySecondarySYNACKs.filter { now.milliseconds(since: $0.value.at) < 5_000 }
        for waiting in outboundWaiting.expired(
            now: now,
            timeoutMilliseconds: configuration.outboundPairingTimeoutMilliseconds
        ) {
            if waiting.role == .primary {
                serveOutboundAlone(waiting.syn, now: now, into: &output)
            } else {
                refuseOnSecondary(waiting.syn, now: now, into: &output)
            }
        }
        outboundAlone = outboundAlone.filter {
            now.milliseconds(since: $0.value) < configuration.handshakeTimeoutMilliseconds
        }
        refusedSecondarySYNs = refusedSecondarySYNs.filter {
            now.milliseconds(since: $0.value.at) < configuration.handshakeTimeoutMilliseconds
        }
        for (key, connection) in connections {
            let limit: UInt64
            let since: MonotonicTime
            switch connection.phase {
            case .handshake: limit = configuration.handshakeTimeoutMilliseconds; since = connection.phaseSince
            case .closed: limit = configuration.closedLingerMilliseconds; since = connection.phaseSince
            case .replicating, .primaryOnly, .secondaryOnly:
                if connection.client.acknowledged == nil {
                    // Both kernels answered, the client never acknowledged: a half-open handshake
                    // (a flood's, or a client that gave up), kept no longer than one waiting for answers.
                    limit = configuration.handshakeTimeoutMilliseconds; since = connection.phaseSince
                } else {
                    limit = configuration.idleTimeoutMilliseconds; since = connection.lastActivity
                }
            }
            if now.milliseconds(since: since) >= limit {
                connections[key] = nil
                if connection.opensOutbound {
                    outboundKeys[
                        ConnectionKey(
                            clientAddress: key.clientAddress,
                            clientPort: key.clientPort,
                            serverPort: connection.primaryKernelPort
                        )
                    ] = nil
                }
                heldPrimarySYNACKs[key] = nil
                counters.expired += 1
                if connection.phase != .closed { output.event(.connectionExpired(key, phase: connection.phase.name)) }
            }
        }
        queuedBytes = connections.values.reduce(0) { $0 + $1.queuedBytes }
        return output
    }

    /// Connections the primary serves alone (diverged, or the secondary's replica lost): the
    /// secondary must not take them over with its own copy.
    public var keysServedByPrimaryAlone: [ConnectionKey] {
        connections.values.filter { $0.phase == .primaryOnly }.map(\.key)
    }

    /// Whether the secondary holds a replica of this connection that a takeover would serve:
    /// the merge protects it, or the secondary's copy already serves it alone.
    public func isReplicated(_ key: ConnectionKey) -> Bool {
        switch connections[key]?.phase {
        case .handshake?, .replicating?, .secondaryOnly?: return true
        default: return false
        }
    }

    /// Connections not yet closed: their kernel state is in the primary's sequence space, so
    /// the client can talk to this kernel only through the bridge's translation.
    public var openConnectionCount: Int { connections.values.filter { $0.phase != .closed }.count }

    /// Open connections the merge protects (handshake, replicating, or the secondary's copy
    /// alone), and those served by the primary alone; without building ``connectionStatuses``.
    public var protectionCounts: (protected: Int, unprotected: Int) {
        var protected = 0
        var unprotected = 0
        for connection in connections.values {
            switch connection.phase {
            case .handshake, .replicating, .secondaryOnly: protected += 1
            case .primaryOnly: unprotected += 1
            case .closed: break
            }
        }
        return (protected, unprotected)
    }

    /// Number of connections tracked, tombstones included.
    public var connectionCount: Int { connections.count }

    /// A snapshot of every connection for `status`.
    public var connectionStatuses: [ConnectionStatus] {
        connections.values.map { connection in
            ConnectionStatus(
                key: connection.key,
                serviceAddress: connection.serviceAddress,
                opensOutbound: connection.opensOutbound,
                phase: connection.phase.name,
                delta: connection.translation.sequenceOffset,
                timestampDelta: connection.translation.timestampOffset,
                queuedPrimaryBytes: connection.primary.pending.count,
                queuedSecondaryBytes: connection.secondary.pending.count,
                sequence: ConnectionStatus.Sequence(
                    sentUpTo: connection.sentUpTo.rawValue,
                    acknowledgmentSent: connection.advertised.acknowledgment?.rawValue,
                    advertisedEdge: connection.advertised.edge?.rawValue,
                    primaryAcknowledgment: connection.primary.acknowledged?.rawValue,
                    primaryEdge: connection.primary.rightEdge?.rawValue,
                    secondaryAcknowledgment: connection.secondary.acknowledged?.rawValue,
                    secondaryEdge: connection.secondary.rightEdge?.rawValue,
                    clientAcknowledgment: connection.client.acknowledged?.rawValue,
                    primaryQueueBase: connection.primary.pending.base.rawValue,
                    primaryQueueContiguous: connection.primary.pending.contiguousCount,
                    primaryQueueEnd: connection.primary.pending.highestEnd.rawValue,
                    secondaryQueueBase: connection.secondary.pending.base.rawValue,
                    secondaryQueueContiguous: connection.secondary.pending.contiguousCount,
                    secondaryQueueEnd: connection.secondary.pending.highestEnd.rawValue
                ),
                statistics: connection.statistics
            )
        }.sorted { ($0.key.clientAddress.value, $0.key.clientPort) < ($1.key.clientAddress.value, $1.key.clientPort) }
    }
}

/// What to do with a segment the primary's own kernel sends.
public enum PrimaryKernelVerdict: Equatable, Sendable {
    /// Drop it from the kernel's path: the bridge's output replaces it.
    case consume
    /// Let it go out unchanged (an unprotected connection).
    case pass
}

/// What to do with a client segment intercepted on its way to the primary's kernel.
public enum ClientVerdict: Equatable, Sendable {
    /// Pass it on; `modified` says whether its bytes were rewritten.
    case accept(modified: Bool)
    /// Drop it (the table is full).
    case drop
}

/// Bridge-wide counters of the primary.
public struct PrimaryCounters: Equatable, Sendable {
    public var segmentsFromPrimary: UInt64 = 0
    public var segmentsFromSecondary: UInt64 = 0
    public var segmentsFromClient: UInt64 = 0
    public var passedUnprotectedFromPrimary: UInt64 = 0
    public var droppedUnknownFromSecondary: UInt64 = 0
    /// Digested segments of the secondary (`--relay digests`) that named no connection being
    /// merged, or were not a header with a byte count.
    public var droppedDigestsFromSecondary: UInt64 = 0
    public var heldEarlySYNACKs: UInt64 = 0
    public var droppedUnprotectedFromSecondary: UInt64 = 0
    public var passedUnknownFromClient: UInt64 = 0
    public var droppedTableFull: UInt64 = 0
    /// Entries a full table gave up for new connections: half-open handshakes, closed connections.
    public var evictedHandshakes: UInt64 = 0
    public var evictedClosed: UInt64 = 0
    /// Client SYNs on established connections (RFC 5961 §4): passed to the kernels, the connection kept.
    public var synOnEstablished: UInt64 = 0
    /// New connections passed unprotected: their client endpoint and port were in use on
    /// another service address (see ``PrimaryBridge/clientSegment(_:now:)``).
    public var passedCollidingAddress: UInt64 = 0
    /// Handshakes the secondary's kernel reset (nothing listening there): served by the primary alone.
    public var refusedBySecondary: UInt64 = 0
    /// Client segments of connections served by the secondary alone, kept from the primary's kernel.
    public var droppedForSecondaryOnly: UInt64 = 0
    public var expired: UInt64 = 0
    /// Outbound connections (§7.2) whose two SYNs were paired and merged.
    public var outboundPaired: UInt64 = 0
    /// Outbound connections the primary's kernel opened that went out alone, unprotected: no
    /// partner in time, no secondary, the pairing table full, or the port the secondary chose busy.
    public var outboundServedAlone: UInt64 = 0
    /// Segments of those connections (and their retransmitted SYNs) passed as they are.
    public var passedOutboundAlone: UInt64 = 0
    /// The secondary kernel's outbound SYNs that found no partner: refused with a reset.
    public var outboundRefusedOnSecondary: UInt64 = 0
}

/// One connection as `status` shows it.
public struct ConnectionStatus: Equatable, Sendable {
    public var key: ConnectionKey
    public var serviceAddress: IPv4Address
    /// The servers opened it (§7.2); its key's client is the remote end, its server port the
    /// local port the remote end knows.
    public var opensOutbound: Bool
    public var phase: String
    public var delta: UInt32
    public var timestampDelta: UInt32
    public var queuedPrimaryBytes: Int
    public var queuedSecondaryBytes: Int
    public var sequence: Sequence
    public var statistics: ConnectionStatistics

    /// Where the merge stands, in raw sequence numbers: client space for
    /// acknowledgments and edges, the secondary's space for `sentUpTo` and
    /// the client's acknowledgment.
    public struct Sequence: Equatable, Sendable, Codable {
        public var sentUpTo: UInt32
        public var acknowledgmentSent: UInt32?
        public var advertisedEdge: UInt32?
        public var primaryAcknowledgment: UInt32?
        public var primaryEdge: UInt32?
        public var secondaryAcknowledgment: UInt32?
        public var secondaryEdge: UInt32?
        public var clientAcknowledgment: UInt32?
        /// Each server's queue: where it starts, how much is contiguous from there, where it ends.
        public var primaryQueueBase: UInt32
        public var primaryQueueContiguous: Int
        public var primaryQueueEnd: UInt32
        public var secondaryQueueBase: UInt32
        public var secondaryQueueContiguous: Int
        public var secondaryQueueEnd: UInt32
    }
}
