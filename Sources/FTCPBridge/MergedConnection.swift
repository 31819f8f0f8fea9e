import FTCPWire

/// One protected connection at the primary bridge: the merge of the two
/// servers' output streams into the one stream the client sees (paper §3).
///
/// It owns the connection's state and applies the paper's rules, each a type of its own:
/// ``MergedHandshake`` (§7.1, §7.2), ``SequenceSpaceTranslation`` (Δ and Δts, §3.3),
/// ``ByteMerge`` (bytes and FIN, divergence, §3.2), ``AcknowledgmentMerge`` (the smaller
/// ACK and window, §3.2, §3.4), ``ClientSegmentBuilder`` (segments to the client, §3.4) and
/// ``InboundTranslation`` (client segments to the primary's kernel). It decides which rule
/// applies in which phase, and keeps what the rules return: the merge itself in
/// `MergedConnection+Merge.swift`, one server alone in `MergedConnection+Alone.swift`.
struct MergedConnection: Sendable {
    enum Phase: Equatable, Sendable {
        /// Waiting for both kernels' SYN-ACKs.
        case handshake
        /// Both answered; bytes are merged.
        case replicating
        /// The secondary no longer counts for this connection (divergence, its
        /// kernel reset or ended the connection while the primary's goes on, or
        /// the secondary failed): the primary's segments go out translated, without waiting.
        case primaryOnly
        /// The primary's kernel reset or ended the connection while the
        /// secondary's goes on (the primary's application died, or closed
        /// early): the secondary's segments go out as they are (they are in the
        /// client's space already); the primary's kernel is kept out of it.
        case secondaryOnly
        /// Closed; Δ is kept a while so late segments are still translated.
        case closed

        var name: String {
            switch self {
            case .handshake: return "handshake"
            case .replicating: return "replicating"
            case .primaryOnly: return "primary-only"
            case .secondaryOnly: return "secondary-only"
            case .closed: return "closed"
            }
        }
    }

    let key: ConnectionKey
    /// The address the client connected to (the primary's).
    let serviceAddress: IPv4Address
    var phase: Phase = .handshake
    var client: ClientStream
    var primary: ServerStream
    var secondary: ServerStream
    /// Δ and Δts between the primary's kernel's space and the client's (the secondary's).
    var translation = SequenceSpaceTranslation.identity
    /// Next sequence number (secondary space) not yet sent to the client.
    var sentUpTo = SequenceNumber(0)
    /// The acknowledgment and window edge the client was last told.
    var advertised = ClientAdvertisement()
    var finSent = false
    /// A kernel answered the client's SYN with a reset (no application listening there).
    var primaryRefusedHandshake = false
    var secondaryRefusedHandshake = false
    var lastActivity: MonotonicTime
    var phaseSince: MonotonicTime
    /// The phase the connection closed from: a server that no longer counted then (lost, or
    /// diverged) has no say after the close either.
    var closedFrom: Phase?
    var statistics = ConnectionStatistics()
    /// The servers opened it (§7.2): their SYNs were merged into one to the remote end, which
    /// plays the client's part from its SYN-ACK on. `key.serverPort` is the secondary kernel's
    /// local port, the one the remote end knows.
    let opensOutbound: Bool
    /// Where the primary's kernel's socket is: its local address and port, which the remote
    /// end's segments are readdressed to (its kernel may have chosen another port than the
    /// secondary's, and its own address rather than the service address).
    let primaryKernelAddress: IPv4Address
    let primaryKernelPort: UInt16
    /// The merged SYN of an outbound connection went out (Δ is set).
    var mergedSYNSent = false
    /// How many more bytes the bridge-wide cap lets this connection queue now (set by the
    /// bridge before each server segment; see ``BridgeConfiguration/maximumQueuedBytesTotal``).
    var queueRoom = Int.max
    /// Bytes both queues hold.
    var queuedBytes: Int { primary.pending.count + secondary.pending.count }
    /// What a server with nothing queued for a connection may queue whatever the bridge-wide cap.
    static let queueFloorBytes = 64 << 10
    /// Computes the digest of the primary's bytes that a claim of the secondary is compared with
    /// (set by the bridge when the connection begins).
    var digester: PayloadDigester = PayloadDigest.fnv
    /// Whether same-length differences are tolerated (set by the bridge from its
    /// ``DivergencePolicy`` when the connection begins).
    var toleratesSameLength = false

    init(key: ConnectionKey, serviceAddress: IPv4Address, clientSYN: TCPSegment, capacity: Int, now: MonotonicTime) {
        self.key = key
        self.serviceAddress = serviceAddress
        client = ClientStream(initialSequence: clientSYN.sequenceNumber, handshake: HandshakeOptions(clientSYN))
        primary = ServerStream(capacity: capacity)
        secondary = ServerStream(capacity: capacity)
        lastActivity = now
        phaseSince = now
        opensOutbound = false
        primaryKernelAddress = serviceAddress
        primaryKernelPort = key.serverPort
    }

    /// A connection both servers' applications open (§7.2), before either kernel's SYN is recorded.
    init(
        outbound key: ConnectionKey,
        serviceAddress: IPv4Address,
        primaryKernelAddress: IPv4Address,
        primaryKernelPort: UInt16,
        capacity: Int,
        now: MonotonicTime
    ) {
        self.key = key
        self.serviceAddress = serviceAddress
        // The remote end's ISN and options come with its SYN-ACK.
        client = ClientStream(
            initialSequence: SequenceNumber(0),
            handshake: HandshakeOptions(
                maximumSegmentSize: nil,
                windowScale: nil,
                sackPermitted: false,
                timestamps: nil,
                window: 0
            )
        )
        primary = ServerStream(capacity: capacity)
        secondary = ServerStream(capacity: capacity)
        lastActivity = now
        phaseSince = now
        opensOutbound = true
        self.primaryKernelAddress = primaryKernelAddress
        self.primaryKernelPort = primaryKernelPort
    }

    // MARK: Negotiated parameters

    var clientUsesWindowScale: Bool { client.handshake.windowScale != nil }

    /// The shift a server applies to its window fields.
    func windowShift(of stream: ServerStream) -> UInt8 {
        guard clientUsesWindowScale, let shift = stream.handshake?.windowScale else { return 0 }
        return min(shift, 14)
    }

    /// The shift the client applies to the merged window fields: the secondary's.
    var outputWindowShift: UInt8 { windowShift(of: secondary) }

    var timestampsAgreed: Bool {
        client.handshake.timestamps != nil && primary.handshake?.timestamps != nil
            && secondary.handshake?.timestamps != nil
    }

    var sackAgreed: Bool {
        client.handshake.sackPermitted && primary.handshake?.sackPermitted == true
            && secondary.handshake?.sackPermitted == true
    }

    /// The most payload plus TCP options a segment to the client may carry (RFC 6691): the
    /// client's MSS, and no more than either server's, whose MSS reflects its own link's MTU
    /// (the merged SYN-ACK told the client the smaller of the two).
    var outputMaximumSegmentSize: Int {
        let clientSize = max(
            Int(client.handshake.maximumSegmentSize ?? 536),
            BridgeConfiguration.minimumClientSegmentSize
        )
        let serverSizes = [primary.handshake?.maximumSegmentSize, secondary.handshake?.maximumSegmentSize]
            .compactMap { $0.map(Int.init) }
        return ([clientSize] + serverSizes).min()!
    }

    // MARK: Segments from the servers

    /// A segment from the primary's own kernel. Returns without output if the
    /// segment had to wait for the secondary's copy.
    mutating func primarySegment(_ segment: TCPSegment, now: MonotonicTime, into output: inout BridgeOutput) {
        lastActivity = now
        statistics.segmentsFromPrimary += 1
        if segment.flags.contains(.syn) {
            Self.recordSYN(segment, into: &primary)
            completeHandshakeIfReady(now: now, into: &output)
            return
        }
        switch phase {
        case .handshake:
            if segment.flags.contains(.rst) && !opensOutbound {
                // The primary's kernel refused the client (its application is not
                // listening): the secondary's answer, if it has come, serves alone.
                primaryRefusedHandshake = true
                output.event(.replicaLost(key, role: .primary, cause: .reset))
                serveSecondaryHandshakeAlone(now: now, into: &output)
                return
            }
            if !passAnswerOfPreviousConnection(segment, from: .primary, into: &output) {
                // The kernel's own space cannot be mapped before the secondary answers.
                statistics.droppedBeforeHandshake += 1
            }
        case .closed where closedFrom == .secondaryOnly || closedFrom == .handshake:
            // The primary's kernel refused or left the connection before it closed, or it closed
            // before both kernels answered (Δ was never known): what it sends now is not of the
            // stream the client got.
            statistics.droppedFromPrimaryAfterReplicaLost += 1
        case .closed:
            send(
                clientBuilder.withinMaximumSegmentSize(addressing.translatedFromPrimary(segment, by: translation)),
                into: &output
            )
            statistics.retransmissionsForwarded += 1
        case .primaryOnly:
            forwardFromPrimaryAlone(segment, into: &output)
        case .secondaryOnly:
            statistics.droppedFromPrimaryAfterReplicaLost += 1
        case .replicating:
            serverSegment(segment, from: .primary, now: now, into: &output)
        }
    }

    /// A segment the secondary's kernel produced, relayed by its bridge.
    mutating func secondarySegment(_ segment: TCPSegment, now: MonotonicTime, into output: inout BridgeOutput) {
        lastActivity = now
        statistics.segmentsFromSecondary += 1
        let flags = segment.flags
        if flags.contains(.syn) {
            Self.recordSYN(segment, into: &secondary)
            if primaryRefusedHandshake {
                serveSecondaryHandshakeAlone(now: now, into: &output)
            } else {
                completeHandshakeIfReady(now: now, into: &output)
            }
            return
        }
        switch phase {
        case .handshake:
            if flags.contains(.rst) && !opensOutbound {
                // The secondary's kernel refused the client (its application is not
                // listening): the bridge forgets the connection and the primary serves it.
                secondaryRefusedHandshake = true
                output.event(.replicaLost(key, role: .secondary, cause: .reset))
            }
            if !passAnswerOfPreviousConnection(segment, from: .secondary, into: &output) {
                statistics.droppedBeforeHandshake += 1
            }
        case .closed where closedFrom == .primaryOnly || closedFrom == .handshake:
            // Diverged, or counted lost, before the close (its bytes may not be the client's), or
            // the connection closed before its handshake was merged.
            statistics.droppedFromSecondaryAfterDivergence += 1
        case .closed:
            output.send(addressing.relayed(segment), connection: key)
            statistics.retransmissionsForwarded += 1
        case .primaryOnly:
            statistics.droppedFromSecondaryAfterDivergence += 1
        case .secondaryOnly:
            forwardFromSecondaryAlone(segment, now: now, into: &output)
        case .replicating:
            serverSegment(segment, from: .secondary, now: now, into: &output)
        }
    }

    /// Passes to the client, as it is, a kernel's answer to its SYN that is not a SYN-ACK: an
    /// ACK (or FIN) without bytes of the connection the kernel still holds on these ports from
    /// before (one whose last ACK was lost, a TIME-WAIT the client's new SYN does not end).
    /// RFC 5961 §4: "the receiver ... MUST send an ACK (challenge ACK) to the remote peer";
    /// RFC 9293 §3.10.7.3, for a client in SYN-SENT: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT,
    /// send a reset (unless the RST bit is set ...) <SEQ=SEG.ACK><CTL=RST>". That reset ends the
    /// kernel's old connection and the client's next SYN opens the new one, as with one
    /// server; dropped here, the client's SYNs would go unanswered until it gave up. Returns
    /// whether the segment was such an answer.
    private mutating func passAnswerOfPreviousConnection(
        _ segment: TCPSegment,
        from role: ServerRole,
        into output: inout BridgeOutput
    ) -> Bool {
        let flags = segment.flags
        guard phase == .handshake, !opensOutbound, flags.contains(.ack), !flags.contains(.syn),
            !flags.contains(.rst), segment.payloadLength == 0
        else { return false }
        output.send(addressing.relayed(segment), connection: key)
        output.event(.previousConnectionAnswered(key, role: role))
        statistics.previousConnectionsAnswered += 1
        return true
    }

    /// A segment the secondary's kernel produced, relayed as its header and digests of its
    /// `payloadLength` bytes, one per piece of `pieceLength` (`--relay digests`): `segment` is the
    /// header alone. Each piece is merged once the primary's own bytes of the same range match
    /// its digest; the primary's go out, which are then the same.
    mutating func secondaryDigestedSegment(
        _ segment: TCPSegment,
        payloadLength: Int,
        pieceLength: Int,
        digests: [PayloadDigest],
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        lastActivity = now
        statistics.segmentsFromSecondary += 1
        guard phase == .replicating else {
            // Before both kernels answered, after a divergence or close, nothing is merged; with
            // the primary's replica lost, the secondary relays this connection whole again, and
            // resends these bytes (the daemon asks it to).
            statistics.digestsNotMerged += 1
            return
        }
        serverSegment(
            segment,
            from: .secondary,
            digested: (payloadLength, pieceLength, digests),
            now: now,
            into: &output
        )
    }

    /// A server's SYN-ACK (or its retransmission): its ISN, options and acknowledgment.
    static func recordSYN(_ segment: TCPSegment, into stream: inout ServerStream) {
        stream.initialSequence = segment.sequenceNumber
        stream.handshake = HandshakeOptions(segment)
        AcknowledgmentMerge.record(segment, into: &stream, shift: 0)
    }

    mutating func completeHandshakeIfReady(now: MonotonicTime, into output: inout BridgeOutput) {
        guard let isnP = primary.initialSequence, let isnS = secondary.initialSequence,
            let synP = primary.handshake, let synS = secondary.handshake,
            // A SYN-ACK that comes after the close (the client reset, or gave up) is answered by
            // no one: the client may be opening another connection from the same port.
            phase != .closed
        else { return }
        let handshake = MergedHandshake(primary: synP, secondary: synS)
        if opensOutbound {
            sendMergedSYN(handshake, isnP: isnP, isnS: isnS, into: &output)
            return
        }
        if phase == .handshake {
            translation = SequenceSpaceTranslation(
                primaryInitialSequence: isnP,
                primaryHandshake: synP,
                secondaryInitialSequence: isnS,
                secondaryHandshake: synS
            )
            sentUpTo = isnS + 1
            primary.pending = SequenceRangeStore(base: sentUpTo, capacity: primary.pending.capacity)
            secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
            phase = .replicating
            phaseSince = now
            output.event(.connectionReplicated(key, delta: translation.sequenceOffset))
        } else {
            statistics.retransmissionsForwarded += 1
        }
        let (synACK, told) = handshake.synACK(from: isnS, to: client, addressing: addressing)
        advertised = told
        output.send(synACK, connection: key)
    }

    /// The merged SYN of a connection the servers open (``MergedHandshake``, §7.2), sent again for
    /// either kernel's retransmitted SYN while the remote end has not answered.
    mutating func sendMergedSYN(
        _ handshake: MergedHandshake,
        isnP: SequenceNumber,
        isnS: SequenceNumber,
        into output: inout BridgeOutput
    ) {
        // The secondary may have failed before the remote end answered: the primary's kernel
        // retransmits its SYN, and the SYN the remote end knows goes out again.
        guard phase == .handshake || (phase == .primaryOnly && client.acknowledged == nil) else {
            statistics.droppedBeforeHandshake += 1
            return
        }
        if !mergedSYNSent {
            mergedSYNSent = true
            translation = SequenceSpaceTranslation(
                primaryInitialSequence: isnP,
                primaryHandshake: handshake.primary,
                secondaryInitialSequence: isnS,
                secondaryHandshake: handshake.secondary
            )
            sentUpTo = isnS + 1
            output.event(.connectionReplicated(key, delta: translation.sequenceOffset))
        } else {
            statistics.retransmissionsForwarded += 1
        }
        output.send(handshake.outboundSYN(from: isnS, addressing: addressing), connection: key)
    }

    /// §7.2: "When the TCP layer of T accepts the connection request, it sends a SYN segment in
    /// return. The primary server bridge and the secondary server bridge handle the
    /// acknowledgment segment in the same way as all future incoming segments." The remote
    /// end's SYN-ACK makes it the client of a replicating connection; both kernels' ACKs of it
    /// then merge into the one that completes its handshake.
    mutating func acceptRemoteSYNACK(_ segment: TCPSegment, now: MonotonicTime) {
        client = ClientStream(initialSequence: segment.sequenceNumber, handshake: HandshakeOptions(segment))
        guard phase == .handshake else { return }  // primary-only: its kernel's segments go out translated
        primary.pending = SequenceRangeStore(base: sentUpTo, capacity: primary.pending.capacity)
        secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
        phase = .replicating
        phaseSince = now
    }

    // MARK: Segments to the client

    /// Where segments to the client come from and go to.
    var addressing: ClientAddressing { ClientAddressing(key: key, serviceAddress: serviceAddress) }

    /// The builder of segments to the client, from the connection's state as it is now.
    var clientBuilder: ClientSegmentBuilder {
        ClientSegmentBuilder(
            addressing: addressing,
            acknowledgments: AcknowledgmentMerge(primary: primary, secondary: secondary),
            handshakeAcknowledgment: client.initialSequence + 1,
            windowShift: outputWindowShift,
            maximumSegmentSize: outputMaximumSegmentSize,
            timestamps: timestampsAgreed ? clientTimestamps : nil,
            sackBlockLimit: sackAgreed ? (timestampsAgreed ? 3 : 4) : nil
        )
    }

    /// The timestamps of a segment to the client.
    ///
    /// A kernel takes an RTT sample from the TSecr of an ACK that covers retransmitted bytes
    /// (RFC 7323 §4.3), so both fields must be as fresh as the exchange they belong to:
    /// - TSval: the newer of the two servers' latest TSvals, in the secondary's clock. Stamped
    ///   with the clock of a server that has sent nothing for a while (backed off, or waiting
    ///   for the other), the primary kernel's retransmission that fills the client's hole would
    ///   teach both kernels an RTT of that while.
    /// - TSecr: the echo of the server whose acknowledgment the client gets (the one behind;
    ///   the newer echo when both acknowledge as far). That server's echo is of the client's
    ///   segment that moved its acknowledgment, as RFC 7323 §4.3 wants; the other's may be
    ///   seconds old when it has sent nothing since, and the client would take its own RTT to be
    ///   seconds and wait as long to send the next retransmission the lagging server needs.
    var clientTimestamps: (value: UInt32, echoReply: UInt32)? {
        guard let secondaryClock = secondary.timestamps ?? secondary.handshake?.timestamps else { return nil }
        guard let primaryClock = primary.timestamps else { return secondaryClock }
        let value = SequenceNumber.later(SequenceNumber(secondaryClock.value), SequenceNumber(primaryClock.value))
            .rawValue
        let echoReply: UInt32
        switch (primary.acknowledged, secondary.acknowledged) {
        case let (p?, s?) where p < s: echoReply = primaryClock.echoReply
        case let (p?, s?) where s < p: echoReply = secondaryClock.echoReply
        default:
            echoReply =
                SequenceNumber.later(SequenceNumber(secondaryClock.echoReply), SequenceNumber(primaryClock.echoReply))
                .rawValue
        }
        return (value, echoReply)
    }

    /// Keeps what a built segment told the client, and returns the segment.
    mutating func commit(_ built: (segment: TCPPacketFields, advertised: ClientAdvertisement))
        -> TCPPacketFields
    {
        advertised = built.advertised
        return built.segment
    }

    func send(_ segments: [TCPPacketFields], into output: inout BridgeOutput) {
        for segment in segments { output.send(segment, connection: key) }
    }

    func send(_ segment: TCPPacketFields, into output: inout BridgeOutput) {
        output.send(segment, connection: key)
    }

    /// Sends a pure ACK when the merged ACK or window edge moved forward with no data to carry it
    /// (§3.4), or to repeat a server's duplicate ACK.
    mutating func sendAcknowledgmentIfAdvanced(
        _ acknowledgments: AcknowledgmentMerge,
        forceDuplicate: Bool,
        into output: inout BridgeOutput
    ) {
        guard acknowledgments.acknowledgment != nil, acknowledgments.edge != nil else { return }
        guard acknowledgments.hasAdvanced(beyond: advertised) || forceDuplicate else { return }
        send(commit(clientBuilder.pureAcknowledgment(at: sentUpTo, after: advertised)), into: &output)
        statistics.pureAcknowledgments += 1
    }

    /// Sends `bytes` from `start` in segments that fit the MSS.
    mutating func sendData(_ bytes: [UInt8], at start: SequenceNumber, into output: inout BridgeOutput) {
        let (segments, told) = clientBuilder.dataSegments(bytes, at: start, after: advertised)
        advertised = told
        send(segments, into: &output)
        statistics.bytesSent += UInt64(bytes.count)
    }

    /// Sends `bytes` at `sentUpTo` and moves `sentUpTo` past them.
    mutating func sendNext(_ bytes: [UInt8], into output: inout BridgeOutput) {
        sendData(bytes, at: sentUpTo, into: &output)
        sentUpTo += UInt32(bytes.count)
    }

    /// Sends the FIN at `sentUpTo`, which it then occupies.
    mutating func sendFIN(into output: inout BridgeOutput) {
        send(commit(clientBuilder.fin(at: sentUpTo, after: advertised)), into: &output)
        finSent = true
        sentUpTo += 1
    }

    // MARK: The secondary failing

    /// The secondary is gone: send what only the primary holds, and from now
    /// on forward the primary's segments at once (still moved by Δ and Δts).
    mutating func secondaryFailed(into output: inout BridgeOutput) {
        if opensOutbound && phase == .handshake {
            // The merged SYN may be out with Δ: the primary's kernel goes on alone, translated.
            phase = .primaryOnly
            return
        }
        replicaLost(.secondary, into: &output)
    }

    // MARK: Segments from the client

    /// Records a client segment and rewrites it in place for the primary's kernel
    /// (``InboundTranslation``). Returns whether anything changed.
    mutating func clientSegment(_ packet: TCPPacket, now: MonotonicTime, into output: inout BridgeOutput) -> Bool {
        lastActivity = now
        statistics.segmentsFromClient += 1
        let tcp = packet.tcp
        let flags = tcp.flags
        if opensOutbound && mergedSYNSent && client.acknowledged == nil && flags.contains([.syn, .ack])
            && !flags.contains(.rst) && tcp.acknowledgmentNumber == sentUpTo
        {
            acceptRemoteSYNACK(tcp, now: now)
        }
        if flags.contains(.rst) {
            if phase != .closed && isAcceptableReset(sequence: tcp.sequenceNumber, acknowledgment: tcp) {
                close(reason: .resetByClient, now: now, into: &output)
            } else if phase != .closed {
                // Passed on: each kernel judges it by RFC 5961 (a challenge ACK, or nothing).
                statistics.unacceptableResets += 1
            }
        } else {
            let end = tcp.sequenceNumber + tcp.sequenceLength
            if client.sentUpTo.map({ end > $0 }) ?? true { client.sentUpTo = end }
        }
        if flags.contains(.fin) {
            client.finAt = tcp.sequenceNumber + UInt32(tcp.payloadLength)
        }
        guard phase != .handshake, flags.contains(.ack) else { return false }
        let ack = tcp.acknowledgmentNumber
        if ack > sentUpTo {
            // Acknowledges bytes nobody sent: forged, or a stray from an older connection on the
            // same ports. Each kernel drops it (RFC 5961 §5.2); it must not count as the client's
            // progress (which ends the connection's state once its FIN is acknowledged).
            statistics.acknowledgmentsOfUnsentData += 1
        } else if let old = client.acknowledged {
            client.acknowledged = SequenceNumber.later(old, ack)
        } else {
            client.acknowledged = ack
        }
        InboundTranslation.rewriteForPrimary(tcp, by: translation)
        if phase == .replicating || phase == .secondaryOnly { checkClosed(now: now, into: &output) }
        return true
    }

    /// RFC 5961 §3.2: a reset counts only with the sequence number the receiver expects next.
    /// The bridge cannot know each kernel's exactly, so it takes any of the values the client
    /// could rightly use: where the client's own sending stands, or either server's (or the
    /// merged) acknowledgment; in the handshake, the SYN's sequence number plus one. A blind
    /// reset must guess one of these 32-bit values.
    func isAcceptableReset(sequence: SequenceNumber, acknowledgment segment: TCPSegment? = nil) -> Bool {
        if phase == .handshake && opensOutbound {
            // RFC 9293 §3.10.7.3, SYN-SENT: a reset counts if it acknowledges the SYN.
            return segment.map { $0.flags.contains(.ack) && $0.acknowledgmentNumber == sentUpTo } ?? false
        }
        if phase == .handshake { return sequence == client.initialSequence + 1 }
        let expected = [client.sentUpTo, primary.acknowledged, secondary.acknowledged, advertised.acknowledgment]
            .compactMap { $0 }
        return expected.isEmpty || expected.contains(sequence)
    }

    /// Whether a full table may give this connection up for a new one: closed, or its client
    /// never acknowledged the SYN-ACK (a flood's half-open handshake costs no client anything).
    var isEvictable: Bool { phase == .closed || client.acknowledged == nil }

    // MARK: Closing

    /// Closed once both FINs went out and each was acknowledged.
    mutating func checkClosed(now: MonotonicTime, into output: inout BridgeOutput) {
        guard phase == .replicating || phase == .secondaryOnly, finSent, let clientFIN = client.finAt,
            let ackSent = advertised.acknowledgment, clientFIN < ackSent,
            let clientAck = client.acknowledged, sentUpTo <= clientAck
        else { return }
        close(reason: .finished, now: now, into: &output)
    }

    mutating func close(reason: BridgeEvent.CloseReason, now: MonotonicTime, into output: inout BridgeOutput) {
        if phase != .closed { closedFrom = phase }
        phase = .closed
        phaseSince = now
        primary.pending.removeAll()
        secondary.pending.removeAll()
        secondary.claims.removeAll()
        output.event(.connectionClosed(key, reason: reason))
    }

    mutating func update<T>(_ role: ServerRole, _ body: (inout ServerStream) -> T) -> T {
        role == .primary ? body(&primary) : body(&secondary)
    }
}
