import FTCPWire

/// The secondary bridge's core (paper §3.1): which captured client segments
/// to feed to the secondary's own kernel, rewritten to its address, and which
/// of its kernel's segments to divert to the primary instead of the wire.
///
/// Before a takeover the secondary's kernel never talks to a client: every
/// segment it sends from a protected port goes to the primary.
public struct SecondaryBridge: Sendable {
    public let configuration: BridgeConfiguration
    public private(set) var counters = SecondaryCounters()
    /// Whether the primary's build reads digests, as its latest heartbeat said (the daemon sets
    /// it). Until it says so, and whenever a primary of an older release runs, the new bytes go
    /// whole even with `--relay digests`: a primary that cannot read a digest would wait forever
    /// for the bytes it stands for.
    public var primaryReadsDigests = false
    var seen: [ConnectionKey: SecondaryConnectionActivity] = [:]
    /// Per connection, what the local kernel sent that the client has not acknowledged.
    var flights: [ConnectionKey: UnacknowledgedFlight] = [:]
    /// Which entry a full table gives up for a new connection.
    var eviction = EvictionOrder<ConnectionKey>()
    /// Bytes held in all `flights`.
    public private(set) var retainedBytes = 0

    public init(configuration: BridgeConfiguration) {
        self.configuration = configuration
    }

    /// A client's segment to the primary, captured on the shared segment.
    /// On `.inject` the packet has been readdressed to the secondary in place,
    /// with both checksums recomputed in full (captures may carry the partial
    /// checksum of a sender's offload).
    public mutating func capturedClientSegment(_ packet: TCPPacket, now: MonotonicTime) -> CaptureVerdict {
        let ip = packet.ip
        let tcp = packet.tcp
        guard configuration.serves(ip.destination) else {
            counters.ignoredNotForService += 1
            return .ignore
        }
        let key = ConnectionKey(clientSegment: packet)
        let remoteEnd = configuration.selectsOutbound(
            localPort: tcp.destinationPort,
            remoteAddress: ip.source,
            remotePort: tcp.sourcePort
        )
        if remoteEnd {
            // The remote end of a connection this kernel opened (§7.2): fed only to a socket
            // whose SYN this bridge relayed, so strays and forgeries make no state here.
            guard seen[key]?.opensOutbound == true else {
                counters.ignoredUnknownOutbound += 1
                return .ignore
            }
        } else if !configuration.protectedPorts.contains(tcp.destinationPort) {
            counters.ignoredUnprotectedPort += 1
            return .ignore
        }
        guard ip.source != configuration.secondaryAddress, !configuration.serves(ip.source) else {
            counters.ignoredFromServers += 1
            return .ignore
        }
        let begins = !remoteEnd && tcp.flags.contains(.syn) && !tcp.flags.contains(.ack)
        let service = ip.destination
        if let known = seen[key] {
            if known.serviceAddress != service && !(begins && known.isFinished) {
                // Another service address, same client endpoint and port: this kernel knows
                // both under its own address, so only the first is fed to it; the primary
                // serves the other alone.
                counters.ignoredCollidingAddress += 1
                return .ignore
            }
            if begins && known.isFinished {
                // The ports used again for a new connection: nothing of the old one applies.
                seen[key] = nil
                if let flight = flights.removeValue(forKey: key) { retainedBytes -= flight.retainedBytes }
            }
        }
        let acceptedReset =
            tcp.flags.contains(.rst) && (flights[key]?.acceptsReset(sequence: tcp.sequenceNumber) ?? true)
        if tcp.flags.contains(.rst) && !acceptedReset { counters.unacceptableResets += 1 }
        if let released = flights[key]?.clientSent(tcp) { retainedBytes -= released }
        ip.setDestination(configuration.secondaryAddress)
        if begins || (remoteEnd && tcp.flags.contains([.syn, .ack])) {
            _ = BridgeConfiguration.raiseMaximumSegmentSize(of: tcp)
        }
        packet.updateChecksums()
        counters.injected += 1
        let announced = tcp.flags.contains(.syn) ? tcp.maximumSegmentSize : nil
        // State only for connections whose handshake this bridge saw: one it joined half-way
        // (started after it began, or restarted) has no replica here worth inheriting, and
        // random segments must not fill the table.
        note(key, now: now, creating: begins ? service : nil) {
            $0.segmentsFromClient += 1
            $0.bytesFromClient += UInt64(tcp.payloadLength)
            if let announced { $0.clientMaximumSegmentSize = Int(announced) }
            if tcp.flags.contains(.fin) { $0.finFromClient = true }
            if acceptedReset { $0.reset = true }
            if tcp.flags.contains(.ack) && (!tcp.flags.contains(.syn) || remoteEnd) { $0.handshakeCompleted = true }
        }
        return .inject
    }

    /// The MSS the client announced in its SYN (RFC 9293's default of 536 if none was seen),
    /// but never below ``minimumClientSegmentSize``: what the kernel's segments to it are cut to
    /// on the wire.
    public func clientMaximumSegmentSize(_ key: ConnectionKey) -> Int {
        max(seen[key]?.clientMaximumSegmentSize ?? 536, BridgeConfiguration.minimumClientSegmentSize)
    }

    /// One of the kernel's segments (after ``ownKernelSegment(_:now:)`` said to relay it) as
    /// the packets to relay: the packet itself if it is at most `maximumPacketBytes` long,
    /// else pieces of it that are (a GSO super-segment queued whole is up to 64 KiB). With
    /// nil, pieces that fit the client's MSS, as the kernel would have sent them. The primary
    /// merges bytes, not segments, so the cut does not matter to it.
    public func relayPackets(_ packet: TCPPacket, maximumPacketBytes: Int?) -> [[UInt8]] {
        let key = ConnectionKey(serverSegment: packet)
        let headers = packet.ip.headerLength + packet.tcp.headerLength
        let whole = TCPPacketFields(parsing: packet)
        let pieces =
            maximumPacketBytes.map { whole.split(maximumPayload: $0 - headers) }
            ?? whole.split(maximumSegmentSize: clientMaximumSegmentSize(key))
        guard pieces.count > 1 else { return [Array(packet.bytes)] }
        return pieces.compactMap { try? $0.build() }
    }

    /// Whether the kernel's segment may be relayed as a digest of its bytes instead of the bytes
    /// (`--relay digests`): new bytes of an inbound connection, sent for the first time (they
    /// begin where the kernel's last segment ended), on a port whose divergences are not judged
    /// byte by byte (`same-length` needs the bytes). Everything else goes whole: the handshake,
    /// retransmissions (the primary may have sent part of their range already, and can no
    /// longer check a digest of it), and every segment of a connection the primary asked for
    /// whole (``relayWhole(_:)``), and everything while the primary does not read digests
    /// (``primaryReadsDigests``). Asked before ``ownKernelSegment(_:now:)``.
    public func isDigestible(_ packet: TCPPacket) -> Bool {
        let tcp = packet.tcp
        guard configuration.relaysDigests, primaryReadsDigests, tcp.payloadLength > 0, !tcp.flags.contains(.syn),
            !tcp.flags.contains(.rst), packet.ip.source == configuration.secondaryAddress,
            configuration.protectedPorts.contains(tcp.sourcePort),
            configuration.divergencePolicy.tolerance(forPort: tcp.sourcePort) != .sameLength
        else { return false }
        let key = ConnectionKey(serverSegment: packet)
        guard let activity = seen[key], !activity.opensOutbound, !activity.relaysWhole else { return false }
        return flights[key]?.sendNext == tcp.sequenceNumber
    }

    /// The kernel's segment (one ``isDigestible(_:)`` allowed and ``ownKernelSegment(_:now:)``
    /// said to relay) as what relays it: its headers and digests of its bytes, a digest per piece
    /// shorter than any segment the primary's kernel sends this client (its MSS less 40 bytes of
    /// options), so the primary always can send the bytes a piece needs before the client
    /// acknowledges more. A segment with more pieces than `maximumPieces` becomes several.
    public func digestedRelay(
        _ packet: TCPPacket,
        digester: PayloadDigester,
        maximumPieces: Int
    ) -> [DigestedRelay] {
        let key = ConnectionKey(serverSegment: packet)
        let pieceLength = Self.digestPieceLength(clientMaximumSegmentSize: clientMaximumSegmentSize(key))
        let payload = UnsafeRawBufferPointer(packet.tcp.payload)
        let perRelay = max(1, maximumPieces) * pieceLength
        var header = TCPPacketFields(parsing: packet)
        header.payload = []
        let flags = header.flags
        var relays: [DigestedRelay] = []
        var offset = 0
        while offset < payload.count {
            let length = min(perRelay, payload.count - offset)
            var piece = header
            piece.sequenceNumber = packet.tcp.sequenceNumber + UInt32(offset)
            if offset + length < payload.count { piece.flags = flags.subtracting([.fin, .psh]) }
            let digests = stride(from: offset, to: offset + length, by: pieceLength).map { start in
                digester(UnsafeRawBufferPointer(rebasing: payload[start..<min(start + pieceLength, offset + length)]))
            }
            guard let bytes = try? piece.build() else { return [] }
            relays.append(
                DigestedRelay(header: bytes, payloadLength: length, pieceLength: pieceLength, digests: digests)
            )
            offset += length
        }
        return relays
    }

    /// The bytes one digest covers for a client of this MSS: the MSS less the most a TCP header's
    /// options take (40 bytes), so that one full segment of the primary's kernel to this client,
    /// whatever options it carries, holds a piece's worth: the primary never waits for bytes its
    /// kernel could send only after the client acknowledged the ones waiting.
    static func digestPieceLength(clientMaximumSegmentSize: Int) -> Int {
        max(1, clientMaximumSegmentSize - (TCPSegment.maximumHeaderLength - TCPSegment.minimumHeaderLength))
    }

    /// The primary can no longer merge digests of these connections (its own replica of each is
    /// gone, and it serves them from this kernel's bytes): from now on their segments are relayed
    /// whole, and the packets returned, what the kernel sent that the client has not
    /// acknowledged, go to the primary again, whole.
    public mutating func relayWhole(_ keys: [ConnectionKey]) -> [[UInt8]] {
        var packets: [[UInt8]] = []
        for key in keys where seen[key] != nil && seen[key]?.relaysWhole != true {
            seen[key]!.relaysWhole = true
            counters.relayedWholeOnRequest += 1
            packets += flights[key]?.outstandingPackets() ?? []
        }
        return packets
    }

    /// A segment the secondary's own kernel is sending.
    public mutating func ownKernelSegment(_ packet: TCPPacket, now: MonotonicTime) -> KernelVerdict {
        let tcp = packet.tcp
        let outbound = configuration.selectsOutbound(
            localPort: tcp.sourcePort,
            remoteAddress: packet.ip.destination,
            remotePort: tcp.destinationPort
        )
        guard packet.ip.source == configuration.secondaryAddress,
            outbound || configuration.protectedPorts.contains(tcp.sourcePort)
        else {
            counters.passedUnprotected += 1
            return .pass
        }
        let key = ConnectionKey(serverSegment: packet)
        let opens = outbound && tcp.flags.contains(.syn) && !tcp.flags.contains(.ack)
        if opens, let known = seen[key], known.isFinished || !known.opensOutbound {
            // The port used again for a new connection: nothing of the old one applies.
            seen[key] = nil
            if let flight = flights.removeValue(forKey: key) { retainedBytes -= flight.retainedBytes }
        }
        // The kernel's SYN is the handshake of a connection it opens: the remote end is known
        // by the main service address (the primary sends the merged SYN from it).
        note(key, now: now, creating: opens ? configuration.serviceAddress : nil) {
            if opens { $0.opensOutbound = true }
        }
        if outbound && seen[key]?.opensOutbound != true {
            // Not a connection this bridge saw its kernel open: one begun before the bridge (or
            // before it was selected) goes on as it was, this host's own; a SYN the full table
            // could not track waits for the kernel to send it again.
            if opens {
                counters.droppedUntrackedOutboundSYNs += 1
                return .drop
            }
            counters.passedUnprotected += 1
            return .pass
        }
        counters.relayed += 1
        note(key, now: now) {
            $0.segmentsRelayed += 1
            $0.bytesRelayed += UInt64(tcp.payloadLength)
            if tcp.flags.contains(.fin) { $0.finFromKernel = true }
            if tcp.flags.contains(.rst) { $0.reset = true }
        }
        retainForTakeover(packet, key: key)
        return .relayToPrimary
    }

    /// Keeps a copy of what the kernel sends until the client acknowledges it, so a
    /// takeover can resend at once what died with the primary (within the bounds).
    private mutating func retainForTakeover(_ packet: TCPPacket, key: ConnectionKey) {
        guard flights[key] != nil || seen[key] != nil else { return }
        // Only numbers are read out of the table: a copy of the flight held across the
        // mutation below would make every append copy the list of retained segments.
        let size = packet.bytes.count
        let before = flights[key]?.retainedBytes ?? 0
        let mayRetain =
            retainedBytes + size <= configuration.maximumRetainedBytes
            && before + size <= configuration.maximumQueuedBytesPerServer
        flights[key, default: UnacknowledgedFlight()].kernelSent(packet, mayRetain: mayRetain)
        retainedBytes += (flights[key]?.retainedBytes ?? 0) - before
        if !mayRetain, packet.tcp.sequenceLength > 0 { counters.notRetained += 1 }
    }

    /// A packet the primary asks the secondary's kernel to receive. Accepted
    /// only if it is addressed to the secondary on a protected port.
    public mutating func packetFromPrimary(_ packet: TCPPacket) -> CaptureVerdict {
        let tcp = packet.tcp
        let key = ConnectionKey(clientSegment: packet)
        let outbound = seen[key]?.opensOutbound == true
        guard packet.ip.destination == configuration.secondaryAddress,
            outbound || configuration.protectedPorts.contains(tcp.destinationPort)
        else {
            counters.refusedFromPrimary += 1
            return .ignore
        }
        if outbound && tcp.flags.contains(.rst) {
            // The primary refused this kernel's outbound SYN (no partner): nothing to inherit.
            seen[key]?.reset = true
        }
        counters.injectedFromPrimary += 1
        return .inject
    }

    /// The primary no longer replicates these connections (they diverged, or it served them
    /// alone while this bridge was away): this host's copy is not what the client holds, so
    /// they are forgotten and not inherited at a takeover.
    public mutating func release(_ keys: [ConnectionKey]) {
        guard !isPromoted else { return }
        for key in keys where seen.removeValue(forKey: key) != nil {
            counters.releasedByPrimary += 1
            if let flight = flights.removeValue(forKey: key) { retainedBytes -= flight.retainedBytes }
        }
    }

    // MARK: After a takeover

    /// Whether this bridge has taken over the service address.
    public private(set) var isPromoted = false
    /// Connections begun through the primary: the secondary's sockets for
    /// them are bound to its own address, so after the takeover their
    /// segments are translated between the service address and its own.
    public private(set) var inherited: Set<ConnectionKey> = []
    /// The service address each inherited connection's client knows.
    public private(set) var inheritedServiceAddresses: [ConnectionKey: IPv4Address] = [:]
    /// Inherited connections adopted after the takeover: they vouch for no further ones.
    var adoptedKeys: Set<ConnectionKey> = []

    /// The primary failed and this host now owns the service address.
    /// Returns the inherited connections.
    @discardableResult
    public mutating func promote() -> Set<ConnectionKey> {
        if !isPromoted {
            isPromoted = true
            // A reset connection has nothing left to serve.
            inherited = Set(seen.filter { !$0.value.reset }.keys)
            inheritedServiceAddresses = Dictionary(
                uniqueKeysWithValues: inherited.map { ($0, seen[$0]?.serviceAddress ?? configuration.serviceAddress) }
            )
        }
        return inherited
    }

    /// Inherited connections whose both FINs were seen before the takeover: closed but for
    /// their last acknowledgments.
    public var inheritedClosing: Set<ConnectionKey> {
        Set(inherited.filter { seen[$0]?.finFromClient == true && seen[$0]?.finFromKernel == true })
    }

    /// After `promote()`: the packets that restart every inherited connection's flow at
    /// once, from the service address (see ``UnacknowledgedFlight``). Retained copies
    /// are released: the kernel's own retransmission covers anything after this.
    public mutating func restartPackets() -> [[UInt8]] {
        guard isPromoted else { return [] }
        var packets: [[UInt8]] = []
        for key in inherited.sorted(by: {
            ($0.clientAddress.value, $0.clientPort) < ($1.clientAddress.value, $1.clientPort)
        }) {
            guard let flight = flights[key] else { continue }
            let restart = flight.restartPackets(
                for: key,
                serviceAddress: serviceAddress(of: key),
                maximumSegmentSize: clientMaximumSegmentSize(key)
            )
            counters.restartPackets += UInt64(restart.count)
            if !restart.isEmpty { counters.restartedConnections += 1 }
            packets += restart
        }
        flights = [:]
        retainedBytes = 0
        return packets
    }

    /// After the takeover: a client's segment to the service address, now
    /// delivered to this host. An inherited connection's segment is
    /// readdressed to the secondary's own address (where its socket is);
    /// anything else is served natively. Returns whether it was rewritten.
    public mutating func promotedClientSegment(_ packet: TCPPacket, now: MonotonicTime) -> Bool {
        let tcp = packet.tcp
        let key = ConnectionKey(clientSegment: packet)
        if isPromoted, !inherited.contains(key), tcp.flags.contains(.syn), !tcp.flags.contains(.ack),
            inherited.count < InheritedConnections.limit,
            inherited.contains(where: {
                $0.clientAddress == key.clientAddress && serviceAddress(of: $0) == packet.ip.destination
                    && !adoptedKeys.contains($0) && seen[$0]?.isFinished != true
            })
        {
            // A new connection of a client whose session this node inherited: served from the
            // node's own address too (see ``InheritedConnections/adoptRelated(_:now:)``).
            inherited.insert(key)
            adoptedKeys.insert(key)
            inheritedServiceAddresses[key] = packet.ip.destination
            counters.promotedAdopted += 1
        }
        guard isPromoted, inherited.contains(key), packet.ip.destination == serviceAddress(of: key) else {
            counters.promotedPassed += 1
            return false
        }
        packet.setDestination(configuration.secondaryAddress)
        counters.promotedTranslatedIn += 1
        note(key, now: now) {
            $0.segmentsFromClient += 1; $0.bytesFromClient += UInt64(tcp.payloadLength)
        }
        return true
    }

    /// After the takeover: a segment the secondary's kernel sends. An
    /// inherited connection's segment leaves from the service address, as
    /// the client has always seen it. Returns whether it was rewritten.
    public mutating func promotedKernelSegment(_ packet: TCPPacket, now: MonotonicTime) -> Bool {
        let tcp = packet.tcp
        let key = ConnectionKey(serverSegment: packet)
        guard isPromoted, packet.ip.source == configuration.secondaryAddress, inherited.contains(key) else {
            counters.promotedPassed += 1
            return false
        }
        packet.setSource(serviceAddress(of: key))
        counters.promotedTranslatedOut += 1
        note(key, now: now) {
            $0.segmentsRelayed += 1; $0.bytesRelayed += UInt64(tcp.payloadLength)
        }
        return true
    }

    /// The service address a connection's client sent its SYN to.
    public func serviceAddress(of key: ConnectionKey) -> IPv4Address {
        seen[key]?.serviceAddress ?? inheritedServiceAddresses[key] ?? configuration.serviceAddress
    }

    /// Gives up the oldest entry whose client never completed its handshake, or that is over
    /// (see ``EvictionOrder``); false if none may go.
    private mutating func makeRoom(now: MonotonicTime) -> Bool {
        guard let victim = eviction.next(in: seen, now: now, evictableSince: { $0.isEvictable ? $0.lastSeen : nil })
        else { return false }
        seen[victim] = nil
        if let flight = flights.removeValue(forKey: victim) { retainedBytes -= flight.retainedBytes }
        counters.evicted += 1
        return true
    }

    /// Forgets connections not seen for `idleMilliseconds`.
    public mutating func expire(now: MonotonicTime, idleMilliseconds: UInt64) {
        seen = seen.filter { now.milliseconds(since: $0.value.lastSeen) < idleMilliseconds }
        flights = flights.filter { seen[$0.key] != nil }
        retainedBytes = flights.values.reduce(0) { $0 + $1.retainedBytes }
    }

    /// How many connections are tracked (without building ``connections``).
    public var connectionCount: Int { seen.count }

    /// Connections seen recently, for `status`.
    public var connections: [(key: ConnectionKey, activity: SecondaryConnectionActivity)] {
        seen.map { ($0.key, $0.value) }.sorted {
            ($0.key.clientAddress.value, $0.key.clientPort) < ($1.key.clientAddress.value, $1.key.clientPort)
        }
    }

    private mutating func note(
        _ key: ConnectionKey,
        now: MonotonicTime,
        creating serviceAddress: IPv4Address? = nil,
        _ body: (inout SecondaryConnectionActivity) -> Void
    ) {
        if seen[key] == nil {
            guard let serviceAddress else { return }
            guard seen.count < configuration.maximumConnections || makeRoom(now: now) else {
                counters.untrackedConnections += 1
                return
            }
            seen[key] = SecondaryConnectionActivity(lastSeen: now, serviceAddress: serviceAddress)
        }
        seen[key]!.lastSeen = now
        body(&seen[key]!)
    }
}

/// What to do with a captured or relayed packet at the secondary.
public enum CaptureVerdict: Equatable, Sendable {
    /// Hand it to the secondary's kernel (it was rewritten in place).
    case inject
    /// Not for this bridge.
    case ignore
}

/// What to do with a segment the secondary's kernel is sending.
public enum KernelVerdict: Equatable, Sendable {
    /// Not protected: let it go out.
    case pass
    /// Drop it from the wire and send it to the primary over the replication channel.
    case relayToPrimary
    /// Drop it: the kernel sends it again (an outbound SYN the full table could not track).
    case drop
}

/// What the secondary has seen of one connection, for `status`.
public struct SecondaryConnectionActivity: Equatable, Sendable {
    public var lastSeen: MonotonicTime
    /// Where the client's SYN went.
    public var serviceAddress: IPv4Address
    public var segmentsFromClient: UInt64 = 0
    public var bytesFromClient: UInt64 = 0
    public var segmentsRelayed: UInt64 = 0
    public var bytesRelayed: UInt64 = 0
    /// The MSS option of the client's SYN, if one was captured.
    public var clientMaximumSegmentSize: Int?
    public var finFromClient = false
    public var finFromKernel = false
    public var reset = false
    /// The client acknowledged the SYN-ACK (a segment with ACK and no SYN was captured).
    public var handshakeCompleted = false
    /// This kernel opened it (§7.2): the client is the remote end it connected to.
    public var opensOutbound = false
    /// The primary asked for this connection's bytes whole (`--relay digests`; see
    /// ``SecondaryBridge/relayWhole(_:)``).
    public var relaysWhole = false
    /// Reset, or this kernel has sent its FIN: a SYN on the same ports begins a new connection.
    var isFinished: Bool { reset || finFromKernel }
    /// Whether a full table may give it up for a new connection.
    var isEvictable: Bool { !handshakeCompleted || isFinished }
}

/// Bridge-wide counters of the secondary.
public struct SecondaryCounters: Equatable, Sendable {
    public var injected: UInt64 = 0
    public var relayed: UInt64 = 0
    public var ignoredNotForService: UInt64 = 0
    public var ignoredUnprotectedPort: UInt64 = 0
    /// Segments from a selected outbound connection's remote end for no connection this kernel opened.
    public var ignoredUnknownOutbound: UInt64 = 0
    /// Outbound SYNs of the kernel dropped because the table could not track them (it retries).
    public var droppedUntrackedOutboundSYNs: UInt64 = 0
    public var ignoredFromServers: UInt64 = 0
    public var passedUnprotected: UInt64 = 0
    public var injectedFromPrimary: UInt64 = 0
    public var refusedFromPrimary: UInt64 = 0
    public var untrackedConnections: UInt64 = 0
    /// Client segments not fed to the kernel: their client endpoint and port have a connection
    /// open to another service address (the primary serves theirs alone).
    public var ignoredCollidingAddress: UInt64 = 0
    /// Entries a full table gave up for new connections (half-open handshakes, finished ones).
    public var evicted: UInt64 = 0
    /// Client resets whose sequence number the kernel did not expect: the restart copy was kept.
    public var unacceptableResets: UInt64 = 0
    /// Connections the primary said it no longer replicates.
    public var releasedByPrimary: UInt64 = 0
    public var promotedTranslatedIn: UInt64 = 0
    public var promotedTranslatedOut: UInt64 = 0
    public var promotedPassed: UInt64 = 0
    /// New connections of clients with an inherited connection, served like the inherited ones.
    public var promotedAdopted: UInt64 = 0
    /// Segments the kernel sent that were not kept for a takeover (a bound was reached).
    public var notRetained: UInt64 = 0
    /// Packets sent at the takeover to restart inherited flows, and the connections they served.
    public var restartPackets: UInt64 = 0
    public var restartedConnections: UInt64 = 0
    /// Connections the primary asked to relay whole again (`--relay digests`).
    public var relayedWholeOnRequest: UInt64 = 0
}
