import FTCPWire

/// One protected connection at the primary bridge: the merge of the two
/// servers' output streams into the one stream the client sees (paper §3).
///
/// It owns the connection's state and applies the paper's rules, each a type of its own:
/// ``MergedHandshake`` (§7.1, §7.2), ``SequenceSpaceTranslation`` (Δ and Δts, §3.3),
/// ``ByteMerge`` (bytes and FIN, divergence, §3.2), ``AcknowledgmentMerge`` (the smaller
/// ACK and window, §3.2, §3.4), ``ClientSegmentBuilder`` (segments to the client, §3.4) and
/// ``InboundTranslation`` (client segments to the primary's kernel). It decides which rule
/// applies in which phase, and keeps what the rules return.
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
            // The kernel's own space cannot be mapped before the secondary answers.
            statistics.droppedBeforeHandshake += 1
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
            statistics.droppedBeforeHandshake += 1
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
    private static func recordSYN(_ segment: TCPSegment, into stream: inout ServerStream) {
        stream.initialSequence = segment.sequenceNumber
        stream.handshake = HandshakeOptions(segment)
        AcknowledgmentMerge.record(segment, into: &stream, shift: 0)
    }

    private mutating func completeHandshakeIfReady(now: MonotonicTime, into output: inout BridgeOutput) {
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
    private mutating func sendMergedSYN(
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
    private mutating func acceptRemoteSYNACK(_ segment: TCPSegment, now: MonotonicTime) {
        client = ClientStream(initialSequence: segment.sequenceNumber, handshake: HandshakeOptions(segment))
        guard phase == .handshake else { return }  // primary-only: its kernel's segments go out translated
        primary.pending = SequenceRangeStore(base: sentUpTo, capacity: primary.pending.capacity)
        secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
        phase = .replicating
        phaseSince = now
    }

    // MARK: The merge (§3.2)

    private mutating func serverSegment(
        _ segment: TCPSegment,
        from role: ServerRole,
        digested: (length: Int, pieceLength: Int, digests: [PayloadDigest])? = nil,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let shift = role == .primary ? windowShift(of: primary) : windowShift(of: secondary)
        let sequence =
            role == .primary ? translation.clientSequence(fromPrimary: segment.sequenceNumber) : segment.sequenceNumber
        let flags = segment.flags

        if flags.contains(.rst) {
            // One kernel reset a connection the other still serves: that replica is gone
            // (its application died, or aborted the connection). The other goes on alone;
            // if its kernel resets too, that reset reaches the client from the mode below.
            output.event(.replicaLost(key, role: role, cause: .reset))
            replicaLost(role, into: &output)
            return
        }

        var previousAck: SequenceNumber?
        var previousWindow: UInt32 = 0
        let clock = role == .primary ? translation : .identity
        update(role) { stream in
            previousAck = stream.acknowledged
            previousWindow = stream.windowBytes
            AcknowledgmentMerge.record(segment, into: &stream, shift: shift)
            if var ts = segment.timestamps {
                ts.value = clock.clientTimestamp(fromPrimary: ts.value)
                // A late segment (a relayed datagram resent after a loss) does not set the clock back.
                if stream.timestamps.map({ SequenceNumber(ts.value) >= SequenceNumber($0.value) }) ?? true {
                    stream.timestamps = ts
                }
            }
            stream.sackBlocks = segment.sackBlocks
        }

        var sentData = false
        let payloadLength = digested?.length ?? segment.payloadLength
        if let digested, payloadLength > 0 {
            for (index, digest) in digested.digests.enumerated() {
                let offset = index * digested.pieceLength
                let length = min(digested.pieceLength, payloadLength - offset)
                claim(digest, at: sequence + UInt32(offset), length: length)
            }
        } else if payloadLength > 0 {
            let payload = segment.payload
            // Bytes before sentUpTo were merged and sent already: the kernel is
            // retransmitting (paper §4), and only this copy will come, so it
            // goes out at once.
            var alreadySent = max(0, min(payloadLength, Int(sequence.distance(to: sentUpTo))))
            if alreadySent > 0 && role == .secondary && statistics.toleratedBytes > 0 {
                // The client holds the primary's version of what differed: only the primary
                // kernel's retransmission (which comes too) may fill what it missed.
                alreadySent = 0
            }
            if alreadySent > 0 {
                let bytes = Array(payload[0..<alreadySent])
                sendData(bytes, at: sequence, into: &output)
                statistics.retransmissionsForwarded += 1
                sentData = true
            }
            if alreadySent < payloadLength {
                let start = sequence + UInt32(alreadySent)
                let rest = UnsafeRawBufferPointer(rebasing: payload[alreadySent...])
                // Bytes below the other server's furthest byte pair with its copy and leave at
                // once: always taken. Beyond it only as far as the bridge-wide cap allows.
                // (Plain values only: a copy of a store held across the insert below would make
                // the insert copy all its bytes.)
                let otherEnd =
                    role == .primary
                    ? secondary.claims.highestEnd.map { SequenceNumber.later($0, secondary.pending.highestEnd) }
                        ?? secondary.pending.highestEnd
                    : primary.pending.highestEnd
                let ownIsEmpty = role == .primary ? primary.pending.isEmpty : secondary.pending.isEmpty
                let pairing = max(0, min(rest.count, Int(start.distance(to: otherEnd))))
                // A server with nothing queued here may always queue a little: with the cap full of
                // other connections' bytes, refusing both servers' first bytes would stop this
                // connection's merge for good.
                let floor = ownIsEmpty ? MergedConnection.queueFloorBytes : 0
                let allowed = min(rest.count, pairing + max(0, queueRoom, floor))
                let refused = update(role) { $0.pending.insert(ArraySlice(rest[..<allowed]), at: start) }
                statistics.refusedQueueBytes += UInt64(refused + rest.count - allowed)
                statistics.refusedOverTotalCap += UInt64(rest.count - allowed)
            }
        }
        if flags.contains(.fin) {
            let finAt = sequence + UInt32(payloadLength)
            update(role) { $0.finAt = finAt }
            if finSent && finAt + 1 == sentUpTo {
                send(commit(clientBuilder.fin(at: finAt, after: advertised)), into: &output)
                statistics.retransmissionsForwarded += 1
                sentData = true
            }
        }

        if merge(into: &output) { sentData = true }
        if phase != .replicating { return }

        if !sentData {
            // A duplicate ACK from the server the client's view depends on goes out as a
            // duplicate ACK too.
            let acknowledgments = AcknowledgmentMerge(primary: primary, secondary: secondary)
            let duplicate = acknowledgments.isDuplicate(
                segment,
                from: role == .primary ? primary : secondary,
                previousAcknowledgment: previousAck,
                previousWindowBytes: previousWindow
            )
            sendAcknowledgmentIfAdvanced(acknowledgments, forceDuplicate: duplicate, into: &output)
            if duplicate { statistics.duplicateAcknowledgments += 1 }
        }
        checkClosed(now: now, into: &output)
    }

    /// Keeps the secondary's digest of `length` bytes at `start`, unless those bytes were sent
    /// already: wholly (a retransmission; the primary kernel's own copy goes out at once) or in
    /// part (the rest can no longer be checked; the secondary's kernel retransmits it whole).
    private mutating func claim(_ digest: PayloadDigest, at start: SequenceNumber, length: Int) {
        let end = start + UInt32(length)
        if end <= sentUpTo {
            statistics.digestsOfSentBytes += 1
        } else if start < sentUpTo {
            statistics.digestsNotMerged += 1
        } else if !secondary.claims.insert(.init(start: start, length: length, digest: digest)) {
            statistics.digestsNotMerged += 1
        }
    }

    /// Sends every byte both servers have produced, and the FIN once both reached it at the same
    /// place (``ByteMerge``). Returns whether anything was sent.
    private mutating func merge(into output: inout BridgeOutput) -> Bool {
        var sent = false
        while true {
            // The secondary said these bytes by digest: compared with the primary's own, whole. (When
            // its kernel's retransmission brought all of them whole too, they merge as bytes: finer.)
            if let claim = secondary.claims.first, claim.start == sentUpTo,
                secondary.pending.contiguousCount < claim.length
            {
                if let fin = primary.finAt, fin < claim.end,
                    primary.pending.contiguousCount == Int(sentUpTo.distance(to: fin))
                {
                    // The primary's kernel ends its stream inside the piece (its application died
                    // or closed early) while the secondary's goes on past it: the secondary's wins,
                    // as in ``ByteMerge/ending(at:primaryFIN:secondaryFIN:primaryHeldBytes:secondaryHeldBytes:)``.
                    output.event(.replicaLost(key, role: .primary, cause: .closedEarly))
                    replicaLost(.primary, into: &output)
                    return true
                }
                guard primary.pending.contiguousCount >= claim.length else { break }
                let bytes = primary.pending.take(claim.length)
                secondary.claims.removeFirst()
                let agreed = bytes.withUnsafeBytes { digester($0) } == claim.digest
                if !agreed {
                    // Where in the range they differ is unknown: the range's start is reported.
                    diverge(at: claim.start, into: &output)
                    sendNext(bytes, into: &output)
                    flushAlone(.primary, into: &output)
                    return true
                }
                statistics.digestsMerged += 1
                sendNext(bytes, into: &output)
                secondary.pending.advance(to: sentUpTo)
                sent = true
                continue
            }
            let tolerance = ByteMerge.Tolerance(
                toleratesSameLength: toleratesSameLength,
                toleratedBytesSoFar: statistics.toleratedBytes
            )
            // Bytes run only up to the next claim ahead, which is compared as a whole.
            let limit = secondary.claims.nextStart(after: sentUpTo).map { Int(sentUpTo.distance(to: $0)) }
            guard
                let run = ByteMerge.takeRun(
                    primary: &primary.pending,
                    secondary: &secondary.pending,
                    tolerance: tolerance,
                    limit: limit
                )
            else { break }
            let start = sentUpTo
            defer { statistics.digestsNotMerged += UInt64(secondary.claims.advance(to: sentUpTo)) }
            switch run {
            case let .agreed(bytes):
                sendNext(bytes, into: &output)
                sent = true
            case let .tolerated(bytes, differing):
                // Same length, a few bytes apart (a timestamp, a pid): the client gets the
                // primary's version, and the connection stays protected.
                statistics.toleratedDifferences += 1
                statistics.toleratedBytes += UInt64(differing)
                sendNext(bytes, into: &output)
                sent = true
            case let .diverged(bytes, offset):
                diverge(at: start + UInt32(offset), into: &output)
                // The primary's bytes are the ones its kernel will retransmit.
                sendNext(bytes, into: &output)
                flushAlone(.primary, into: &output)
                return true
            }
        }
        guard !finSent else { return sent }
        let ending = ByteMerge.ending(
            at: sentUpTo,
            primaryFIN: primary.finAt,
            secondaryFIN: secondary.finAt,
            primaryHeldBytes: primary.pending.contiguousCount,
            secondaryHeldBytes: secondary.pending.contiguousCount + (secondary.claims.first?.length ?? 0)
        )
        switch ending {
        case .open:
            return sent
        case .bothFinished:
            sendFIN(into: &output)
            primary.pending.advance(to: sentUpTo)
            secondary.pending.advance(to: sentUpTo)
            return true
        case let .closedEarly(role):
            output.event(.replicaLost(key, role: role, cause: .closedEarly))
            replicaLost(role, into: &output)
            return true
        }
    }

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
    private mutating func acknowledgeAlone(_ stream: ServerStream, into output: inout BridgeOutput) {
        guard let told = clientBuilder.aloneAcknowledgment(of: stream, at: sentUpTo, after: advertised) else { return }
        output.send(commit(told), connection: key)
        statistics.pureAcknowledgments += 1
    }

    /// The primary refused the client's SYN: once the secondary's SYN-ACK is here, it goes
    /// to the client as it is and the connection is the secondary's alone (Δ stays 0).
    private mutating func serveSecondaryHandshakeAlone(now: MonotonicTime, into output: inout BridgeOutput) {
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
    private mutating func forwardFromSecondaryAlone(
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

    private mutating func diverge(at position: SequenceNumber, into output: inout BridgeOutput) {
        statistics.divergences += 1
        output.event(.divergence(key, at: position))
        phase = .primaryOnly
    }

    /// One server goes on alone: sends what it holds, in order (and its FIN if it is there),
    /// and forgets the other's copy.
    private mutating func flushAlone(_ role: ServerRole, into output: inout BridgeOutput) {
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
    private mutating func forwardFromPrimaryAlone(_ segment: TCPSegment, into output: inout BridgeOutput) {
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
    private mutating func commit(_ built: (segment: TCPPacketFields, advertised: ClientAdvertisement))
        -> TCPPacketFields
    {
        advertised = built.advertised
        return built.segment
    }

    private func send(_ segments: [TCPPacketFields], into output: inout BridgeOutput) {
        for segment in segments { output.send(segment, connection: key) }
    }

    private func send(_ segment: TCPPacketFields, into output: inout BridgeOutput) {
        output.send(segment, connection: key)
    }

    /// Sends a pure ACK when the merged ACK or window edge moved forward with no data to carry it
    /// (§3.4), or to repeat a server's duplicate ACK.
    private mutating func sendAcknowledgmentIfAdvanced(
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
    private mutating func sendData(_ bytes: [UInt8], at start: SequenceNumber, into output: inout BridgeOutput) {
        let (segments, told) = clientBuilder.dataSegments(bytes, at: start, after: advertised)
        advertised = told
        send(segments, into: &output)
        statistics.bytesSent += UInt64(bytes.count)
    }

    /// Sends `bytes` at `sentUpTo` and moves `sentUpTo` past them.
    private mutating func sendNext(_ bytes: [UInt8], into output: inout BridgeOutput) {
        sendData(bytes, at: sentUpTo, into: &output)
        sentUpTo += UInt32(bytes.count)
    }

    /// Sends the FIN at `sentUpTo`, which it then occupies.
    private mutating func sendFIN(into output: inout BridgeOutput) {
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
    private mutating func checkClosed(now: MonotonicTime, into output: inout BridgeOutput) {
        guard phase == .replicating || phase == .secondaryOnly, finSent, let clientFIN = client.finAt,
            let ackSent = advertised.acknowledgment, clientFIN < ackSent,
            let clientAck = client.acknowledged, sentUpTo <= clientAck
        else { return }
        close(reason: .finished, now: now, into: &output)
    }

    private mutating func close(reason: BridgeEvent.CloseReason, now: MonotonicTime, into output: inout BridgeOutput) {
        if phase != .closed { closedFrom = phase }
        phase = .closed
        phaseSince = now
        primary.pending.removeAll()
        secondary.pending.removeAll()
        secondary.claims.removeAll()
        output.event(.connectionClosed(key, reason: reason))
    }

    private mutating func update<T>(_ role: ServerRole, _ body: (inout ServerStream) -> T) -> T {
        role == .primary ? body(&primary) : body(&secondary)
    }
}
