import FTCPWire

/// One server serving a connection alone (paper §5, §6): the part of ``MergedConnection`` that
/// takes over when one server's copy of the connection is gone.
extension MergedConnection {
    // MARK: One server alone (§5, §6)

    /// One server's copy of the connection is gone: the other serves it alone from now on.
    mutating func replicaLost(_ role: ServerRole, into output: inout BridgeOutput) {
        guard phase == .replicating else { return }
        switch role {
        case .secondary:
            flushAlone(.primary, into: &output)
            phase = .primaryOnly
            acknowledgeAlone(primary, into: &output)
        case .primary:
            flushAlone(.secondary, into: &output)
            phase = .secondaryOnly
            acknowledgeAlone(secondary, into: &output)
        }
    }

    /// Tells the client at once how far the server that goes on has acknowledged, with its
    /// window: the merged ACK waited for the lost server, and the one that goes on may have
    /// nothing to send that would carry its ACK (a client whose window is full would wait for
    /// its retransmission timer). Both servers' ACKs are in the client's sequence space.
    mutating func acknowledgeAlone(_ stream: ServerStream, into output: inout BridgeOutput) {
        guard let told = clientBuilder.aloneAcknowledgment(of: stream, at: sentUpTo, after: advertised) else { return }
        output.send(commit(told), connection: key)
        statistics.pureAcknowledgments += 1
    }

    /// The primary refused the client's SYN: once the secondary's SYN-ACK is here, it goes
    /// to the client as it is and the connection is the secondary's alone (Δ stays 0).
    mutating func serveSecondaryHandshakeAlone(now: MonotonicTime, into output: inout BridgeOutput) {
        guard phase == .handshake, let isnS = secondary.initialSequence, let synS = secondary.handshake else { return }
        sentUpTo = isnS + 1
        secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
        phase = .secondaryOnly
        phaseSince = now
        let synACK = MergedHandshake.secondaryAloneSYNACK(synS, from: isnS, to: client, addressing: addressing)
        advertised.acknowledgment = synACK.acknowledgmentNumber
        output.send(synACK, connection: key)
    }

    /// In secondary-only mode a secondary segment goes out at once, as it is: it is in the
    /// client's sequence space and carries the secondary's own ACK, window and timestamps.
    mutating func forwardFromSecondaryAlone(
        _ segment: TCPSegment,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let copy = commit(clientBuilder.forwardedFromSecondaryAlone(segment, after: advertised))
        let end = copy.sequenceNumber + copy.sequenceLength
        if sentUpTo < end { sentUpTo = end }
        if copy.flags.contains(.fin) { finSent = true }
        AcknowledgmentMerge.record(segment, into: &secondary, shift: windowShift(of: secondary))
        send(clientBuilder.withinMaximumSegmentSize(copy), into: &output)
        if copy.flags.contains(.rst) {
            close(reason: .resetByServers, now: now, into: &output)
        } else {
            checkClosed(now: now, into: &output)
        }
    }

    mutating func diverge(at position: SequenceNumber, into output: inout BridgeOutput) {
        statistics.divergences += 1
        output.event(.divergence(key, at: position))
        phase = .primaryOnly
    }

    /// One server goes on alone: sends what it holds, in order (and its FIN if it is there),
    /// and forgets the other's copy.
    mutating func flushAlone(_ role: ServerRole, into output: inout BridgeOutput) {
        let held = update(role) { $0.pending.take($0.pending.contiguousCount) }
        if !held.isEmpty { sendNext(held, into: &output) }
        let finAt = role == .primary ? primary.finAt : secondary.finAt
        if !finSent, finAt == sentUpTo { sendFIN(into: &output) }
        update(role == .primary ? .secondary : .primary) { $0.pending.removeAll() }
        // What the secondary said by digest only cannot be sent: with the primary's replica lost
        // the secondary relays whole again and resends it.
        secondary.claims.removeAll()
    }

    /// In primary-only mode a primary segment goes out at once, translated, carrying the
    /// primary's own ACK and window (§6).
    mutating func forwardFromPrimaryAlone(_ segment: TCPSegment, into output: inout BridgeOutput) {
        let end = translation.clientSequence(fromPrimary: segment.sequenceNumber) + segment.sequenceLength
        if sentUpTo < end { sentUpTo = end }
        if segment.flags.contains(.fin) { finSent = true }
        AcknowledgmentMerge.record(segment, into: &primary, shift: windowShift(of: primary))
        let forwarded = commit(
            clientBuilder.forwardedFromPrimaryAlone(
                segment,
                by: translation,
                primaryWindowShift: windowShift(of: primary),
                after: advertised
            )
        )
        send(clientBuilder.withinMaximumSegmentSize(forwarded), into: &output)
    }
}
