import FTCPWire

/// Connections the servers' applications open (Koch et al. §7.2): both kernels' SYNs become one
/// connection from the service address to the remote end T, which from its SYN-ACK on is merged,
/// protected and failed over like a client's. T sees the secondary's sequence space and the
/// secondary kernel's local port (so a takeover translates only the address, as for a client's
/// connection); the primary's kernel gets T's segments moved back into its own space and port.
extension PrimaryBridge {
    /// A segment of the primary's kernel on a selected outbound connection.
    mutating func primaryOutboundSegment(_ packet: TCPPacket, now: MonotonicTime) -> (
        verdict: PrimaryKernelVerdict, output: BridgeOutput
    ) {
        var output = BridgeOutput()
        let tcp = packet.tcp
        let kernelKey = ConnectionKey(serverSegment: packet)
        let isSYN = tcp.flags.contains(.syn) && !tcp.flags.contains(.ack)
        if let visible = outboundKeys[kernelKey], let existing = connections[visible] {
            if isSYN && (existing.phase == .closed || existing.primary.initialSequence != tcp.sequenceNumber) {
                // The kernel's socket for the old connection is gone (it could not open this
                // 4-tuple again otherwise): the old entry must not catch the new connection.
                forgetOutbound(visible)
            } else {
                updateConnection(visible) { $0.primarySegment(tcp, now: now, into: &output) }
                return (.consume, output)
            }
        }
        if isSYN, let tombstone = connections[kernelKey], tombstone.opensOutbound, tombstone.phase == .closed {
            // A closed merged connection the remote end knew by this port: its Δ must not translate
            // the new one (which may go out alone, in the kernel's own space).
            forgetOutbound(kernelKey)
        }
        guard isSYN, !isAlone, outboundAlone[kernelKey] == nil else {
            if outboundAlone[kernelKey] != nil { outboundAlone[kernelKey] = now }
            if isSYN && outboundAlone[kernelKey] == nil { noteServedAlone(kernelKey, now: now) }
            counters.passedOutboundAlone += 1
            return (.pass, output)
        }
        let endpoint = OutboundPairing.Endpoint(address: packet.ip.destination, port: tcp.destinationPort)
        let syn = OutboundPairing.WaitingSYN(localPort: tcp.sourcePort, bytes: Array(packet.bytes), since: now)
        switch outboundWaiting.add(syn, from: .primary, to: endpoint) {
        case .waiting:
            return (.consume, output)
        case .full:
            noteServedAlone(kernelKey, now: now)
            counters.passedOutboundAlone += 1
            return (.pass, output)
        case let .paired(primary, secondary):
            beginOutbound(primary: primary, secondary: secondary, to: endpoint, now: now, into: &output)
            return (.consume, output)
        }
    }

    /// A segment of the secondary's kernel on a selected outbound connection.
    mutating func secondaryOutboundSegment(
        _ packet: TCPPacket,
        key: ConnectionKey,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let tcp = packet.tcp
        let isSYN = tcp.flags.contains(.syn) && !tcp.flags.contains(.ack)
        if let existing = connections[key], existing.opensOutbound,
            !(isSYN && (existing.phase == .closed || existing.secondary.initialSequence != tcp.sequenceNumber))
        {
            updateConnection(key) { $0.secondarySegment(tcp, now: now, into: &output) }
            return
        }
        guard isSYN, !isAlone else {
            counters.droppedUnknownFromSecondary += 1
            return
        }
        if let refused = refusedSecondarySYNs[key], refused.sequence == tcp.sequenceNumber {
            // A retransmission of a SYN already refused (its reset is on the way, or was lost):
            // refused again, never paired with a later SYN of the primary's, which would put
            // every later pair to this endpoint off by one.
            let syn = OutboundPairing.WaitingSYN(localPort: key.serverPort, bytes: Array(packet.bytes), since: now)
            refuseOnSecondary(syn, now: now, into: &output)
            return
        }
        let endpoint = OutboundPairing.Endpoint(address: key.clientAddress, port: key.clientPort)
        let syn = OutboundPairing.WaitingSYN(localPort: key.serverPort, bytes: Array(packet.bytes), since: now)
        switch outboundWaiting.add(syn, from: .secondary, to: endpoint) {
        case .waiting:
            break
        case .full:
            refuseOnSecondary(syn, now: now, into: &output)
        case let .paired(primary, secondary):
            beginOutbound(primary: primary, secondary: secondary, to: endpoint, now: now, into: &output)
        }
    }

    /// A segment from a remote end of a selected outbound connection to the service address: moved
    /// into the primary kernel's space (ACK, SACK, TSecr) and readdressed to its socket.
    mutating func remoteSegment(_ packet: TCPPacket, key: ConnectionKey, now: MonotonicTime) -> (
        verdict: ClientVerdict, output: BridgeOutput
    ) {
        var output = BridgeOutput()
        let tcp = packet.tcp
        guard let connection = connections[key], connection.opensOutbound,
            connection.serviceAddress == packet.ip.destination
        else {
            // Not one the pair opened (one the primary opened alone, or a stray): as it is.
            counters.passedUnknownFromClient += 1
            return (.accept(modified: false), output)
        }
        // Both bridges raise it alike, so both kernels cut their bytes the same way.
        var modified = tcp.flags.contains([.syn, .ack]) && BridgeConfiguration.raiseMaximumSegmentSize(of: tcp)
        if updateConnection(key, { $0.clientSegment(packet, now: now, into: &output) }) { modified = true }
        if connections[key]!.phase == .secondaryOnly {
            counters.droppedForSecondaryOnly += 1
            return (.drop, output)
        }
        if tcp.destinationPort != connection.primaryKernelPort {
            tcp.setDestinationPort(connection.primaryKernelPort)
            modified = true
        }
        if packet.ip.destination != connection.primaryKernelAddress {
            packet.setDestination(connection.primaryKernelAddress)
            modified = true
        }
        return (.accept(modified: modified), output)
    }

    /// §7.2: both kernels' SYNs are here; the merged one goes to the remote end. If the port the
    /// secondary's kernel chose is one the remote end still knows for an open connection of the
    /// pair (possible only when the primary's kernel chose it too, for another connection), or the
    /// table is full, the pair cannot be merged: the primary's goes out alone and the secondary's
    /// is refused.
    mutating func beginOutbound(
        primary: OutboundPairing.WaitingSYN,
        secondary: OutboundPairing.WaitingSYN,
        to endpoint: OutboundPairing.Endpoint,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let visible = ConnectionKey(
            clientAddress: endpoint.address,
            clientPort: endpoint.port,
            serverPort: secondary.localPort
        )
        let kernelKey = ConnectionKey(
            clientAddress: endpoint.address,
            clientPort: endpoint.port,
            serverPort: primary.localPort
        )
        if let existing = connections[visible], existing.phase == .closed { forgetOutbound(visible) }
        guard connections[visible] == nil, outboundAlone[visible] == nil,
            connections.count < configuration.maximumConnections || makeRoom(now: now)
        else {
            if connections[visible] == nil && outboundAlone[visible] == nil {
                counters.droppedTableFull += 1
                output.event(.tableFull(visible, limit: configuration.maximumConnections))
            }
            serveOutboundAlone(primary, now: now, into: &output)
            refuseOnSecondary(secondary, now: now, into: &output)
            return
        }
        var primaryBytes = primary.bytes
        var secondaryBytes = secondary.bytes
        primaryBytes.withUnsafeMutableBytes { primaryBuffer in
            secondaryBytes.withUnsafeMutableBytes { secondaryBuffer in
                guard let primaryView = try? TCPPacket(validating: primaryBuffer),
                    let secondaryView = try? TCPPacket(validating: secondaryBuffer)
                else { return }
                var connection = MergedConnection(
                    outbound: visible,
                    serviceAddress: configuration.serviceAddress,
                    primaryKernelAddress: primaryView.ip.source,
                    primaryKernelPort: primary.localPort,
                    capacity: configuration.maximumQueuedBytesPerServer,
                    now: now
                )
                // Selected by local port: that port's policy; selected by remote end: the remote
                // port's (5432=same-length covers connections to a back-end's 5432).
                let policyPort =
                    configuration.outboundSelections.contains(.localPort(visible.serverPort))
                    ? visible.serverPort : visible.clientPort
                connection.toleratesSameLength =
                    configuration.divergencePolicy.tolerance(forPort: policyPort) == .sameLength
                connection.primarySegment(primaryView.tcp, now: now, into: &output)
                connection.secondarySegment(secondaryView.tcp, now: now, into: &output)
                connections[visible] = connection
                outboundKeys[kernelKey] = visible
                counters.outboundPaired += 1
            }
        }
    }

    /// Forgets a merged outbound connection under the key the remote end knows, with its
    /// primary-kernel key and its queued bytes.
    mutating func forgetOutbound(_ visible: ConnectionKey) {
        guard let removed = connections.removeValue(forKey: visible) else { return }
        queuedBytes -= removed.queuedBytes
        let kernelKey = ConnectionKey(
            clientAddress: visible.clientAddress,
            clientPort: visible.clientPort,
            serverPort: removed.primaryKernelPort
        )
        if outboundKeys[kernelKey] == visible { outboundKeys[kernelKey] = nil }
    }

    /// The primary kernel's SYN goes out as it is: the connection is its own, unprotected (a
    /// server that opens a connection the other does not has diverged, and is served as one
    /// plain server would be).
    mutating func serveOutboundAlone(
        _ syn: OutboundPairing.WaitingSYN,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        guard let fields = syn.fields else { return }
        noteServedAlone(syn.key, now: now)
        output.event(.outboundUnpaired(syn.key, role: .primary))
        output.send(fields, connection: syn.key)
    }

    private mutating func noteServedAlone(_ kernelKey: ConnectionKey, now: MonotonicTime) {
        counters.outboundServedAlone += 1
        if outboundAlone.count < Self.outboundAloneLimit { outboundAlone[kernelKey] = now }
    }

    /// The secondary kernel's SYN found no partner: its kernel gets a reset as from the remote end
    /// (RFC 9293 SYN-SENT: acceptable when it acknowledges the SYN), so its application sees the
    /// connection refused at once instead of retrying for two minutes, and no half-open
    /// connection stays behind.
    mutating func refuseOnSecondary(
        _ syn: OutboundPairing.WaitingSYN,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        guard let fields = syn.fields else { return }
        let visible = syn.key
        counters.outboundRefusedOnSecondary += 1
        if refusedSecondarySYNs[visible] == nil { output.event(.outboundUnpaired(visible, role: .secondary)) }
        if refusedSecondarySYNs[visible] != nil || refusedSecondarySYNs.count < Self.outboundAloneLimit {
            refusedSecondarySYNs[visible] = (fields.sequenceNumber, now)
        }
        output.inject(
            TCPPacketFields(
                source: fields.destination,
                destination: fields.source,
                sourcePort: fields.destinationPort,
                destinationPort: fields.sourcePort,
                sequenceNumber: SequenceNumber(0),
                acknowledgmentNumber: fields.sequenceNumber + 1,
                flags: [.rst, .ack],
                window: 0,
                options: [],
                payload: []
            )
        )
    }
}
