import FTCPWire

/// One protected connection at the primary bridge: the merge of the two
/// servers' output streams into the one stream the client sees (paper §3).
///
/// The client sees only the secondary's sequence space. Segments from the
/// primary's kernel are moved into it by Δ = ISN_P − ISN_S (and their TSval by
/// Δts); the client's segments to the primary's kernel are moved back
/// (ack, SACK edges, TSecr). Bytes go to the client only once both kernels
/// produced them; the ACK and window the client sees are the smaller of the
/// two, so it never learns of data acknowledged that the secondary lacks.
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
    /// Δ = ISN_P − ISN_S (modulo 2^32).
    var delta: UInt32 = 0
    /// Δts = TSval_P − TSval_S from the two SYN-ACKs.
    var timestampDelta: UInt32 = 0
    /// Next sequence number (secondary space) not yet sent to the client.
    var sentUpTo = SequenceNumber(0)
    var lastAcknowledgmentSent: SequenceNumber?
    var advertisedEdge: SequenceNumber?
    var finSent = false
    /// A kernel answered the client's SYN with a reset (no application listening there).
    var primaryRefusedHandshake = false
    var secondaryRefusedHandshake = false
    var lastActivity: MonotonicTime
    var phaseSince: MonotonicTime
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
        case .closed:
            sendWithinMSS(translatedFromPrimary(segment), into: &output)
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
        case .closed:
            output.send(relayed(segment), connection: key)
            statistics.retransmissionsForwarded += 1
        case .primaryOnly:
            statistics.droppedFromSecondaryAfterDivergence += 1
        case .secondaryOnly:
            forwardFromSecondaryAlone(segment, now: now, into: &output)
        case .replicating:
            serverSegment(segment, from: .secondary, now: now, into: &output)
        }
    }

    /// A server's SYN-ACK (or its retransmission): its ISN, options and acknowledgment.
    private static func recordSYN(_ segment: TCPSegment, into stream: inout ServerStream) {
        stream.initialSequence = segment.sequenceNumber
        stream.handshake = HandshakeOptions(segment)
        Self.recordAcknowledgment(segment, into: &stream, shift: 0)
    }

    private mutating func completeHandshakeIfReady(now: MonotonicTime, into output: inout BridgeOutput) {
        guard let isnP = primary.initialSequence, let isnS = secondary.initialSequence,
            let synP = primary.handshake, let synS = secondary.handshake
        else { return }
        if opensOutbound {
            sendMergedSYN(isnP: isnP, isnS: isnS, synP: synP, synS: synS, now: now, into: &output)
            return
        }
        let firstTime = phase == .handshake
        if firstTime {
            delta = isnP.offset(from: isnS)
            if let tsP = synP.timestamps, let tsS = synS.timestamps {
                timestampDelta = tsP.value &- tsS.value
            }
            sentUpTo = isnS + 1
            primary.pending = SequenceRangeStore(base: sentUpTo, capacity: primary.pending.capacity)
            secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
            phase = .replicating
            phaseSince = now
            output.event(.connectionReplicated(key, delta: delta))
        } else {
            statistics.retransmissionsForwarded += 1
        }
        // MSS = min, window = min (unscaled in a SYN-ACK), window scale = the
        // secondary's, SACK and timestamps only if both servers agreed. Other
        // options (TFO, MPTCP, MD5, experimental) are left out on purpose.
        let options = Self.handshakeOptions(
            maximumSegmentSize: [synP.maximumSegmentSize, synS.maximumSegmentSize].compactMap { $0 }.min(),
            sack: sackAgreed,
            timestamps: timestampsAgreed ? synS.timestamps : nil,
            windowScale: clientUsesWindowScale ? synS.windowScale : nil
        )
        let ack = client.initialSequence + 1
        let window = min(synP.window, synS.window)
        lastAcknowledgmentSent = ack
        advertisedEdge = ack + UInt32(window)
        output.send(
            segment(sequence: isnS, acknowledgment: ack, flags: [.syn, .ack], window: window, options: options),
            connection: key
        )
    }

    /// The options of a merged SYN or SYN-ACK, in the order Linux writes them (timestamps, or two
    /// NOPs after SACK-permitted to keep the alignment; a NOP before the window scale).
    private static func handshakeOptions(
        maximumSegmentSize: UInt16?,
        sack: Bool,
        timestamps: (value: UInt32, echoReply: UInt32)?,
        windowScale: UInt8?
    ) -> [TCPOption] {
        var options: [TCPOption] = []
        if let maximumSegmentSize { options.append(.maximumSegmentSize(maximumSegmentSize)) }
        if sack { options.append(.sackPermitted) }
        if let timestamps {
            options.append(.timestamps(value: timestamps.value, echoReply: timestamps.echoReply))
        } else if sack {
            options.append(contentsOf: [.noOperation, .noOperation])
        }
        if let windowScale { options.append(contentsOf: [.noOperation, .windowScale(windowScale)]) }
        return options
    }

    /// §7.2: "When the bridge of one server receives the other server's SYN segment, it
    /// calculates the sequence number offset, creates a SYN segment and sends it to T." The SYN is
    /// the secondary's (its ISN, so the remote end sees the secondary's space, as a client does),
    /// with the options both kernels can keep: the smaller MSS and window, SACK and timestamps
    /// only if both offered them, the secondary's window scale if both offered one. Sent again
    /// for either kernel's retransmitted SYN while the remote end has not answered.
    private mutating func sendMergedSYN(
        isnP: SequenceNumber,
        isnS: SequenceNumber,
        synP: HandshakeOptions,
        synS: HandshakeOptions,
        now: MonotonicTime,
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
            delta = isnP.offset(from: isnS)
            if let tsP = synP.timestamps, let tsS = synS.timestamps { timestampDelta = tsP.value &- tsS.value }
            sentUpTo = isnS + 1
            output.event(.connectionReplicated(key, delta: delta))
        } else {
            statistics.retransmissionsForwarded += 1
        }
        let options = Self.handshakeOptions(
            maximumSegmentSize: [synP.maximumSegmentSize, synS.maximumSegmentSize].compactMap { $0 }.min(),
            sack: synP.sackPermitted && synS.sackPermitted,
            timestamps: synP.timestamps != nil ? synS.timestamps.map { (value: $0.value, echoReply: 0) } : nil,
            windowScale: synP.windowScale != nil ? synS.windowScale : nil
        )
        output.send(
            TCPPacketFields(
                source: serviceAddress,
                destination: key.clientAddress,
                sourcePort: key.serverPort,
                destinationPort: key.clientPort,
                sequenceNumber: isnS,
                acknowledgmentNumber: SequenceNumber(0),
                flags: [.syn],
                window: min(synP.window, synS.window),
                options: options,
                payload: []
            ),
            connection: key
        )
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

    private mutating func serverSegment(
        _ segment: TCPSegment,
        from role: ServerRole,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let shift = role == .primary ? windowShift(of: primary) : windowShift(of: secondary)
        let sequence = role == .primary ? segment.sequenceNumber - delta : segment.sequenceNumber
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
        let clockOffset = role == .primary ? timestampDelta : 0
        update(role) { stream in
            previousAck = stream.acknowledged
            previousWindow = stream.windowBytes
            Self.recordAcknowledgment(segment, into: &stream, shift: shift)
            if var ts = segment.timestamps {
                ts.value = ts.value &- clockOffset
                stream.timestamps = ts
            }
            stream.sackBlocks = segment.sackBlocks
        }

        var sentData = false
        let payloadLength = segment.payloadLength
        if payloadLength > 0 {
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
                let otherEnd = role == .primary ? secondary.pending.highestEnd : primary.pending.highestEnd
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
                sendFIN(at: finAt, into: &output)
                statistics.retransmissionsForwarded += 1
                sentData = true
            }
        }

        if merge(into: &output) { sentData = true }
        if phase != .replicating { return }

        if !sentData {
            // A duplicate ACK (no data, same ACK, same window) from the server the client's
            // view depends on goes out as a duplicate ACK too: it is what drives the client's
            // fast retransmit when that server misses a segment.
            let stream = role == .primary ? primary : secondary
            let duplicate =
                payloadLength == 0 && !flags.contains(.fin) && previousAck == stream.acknowledged
                && previousWindow == stream.windowBytes && stream.acknowledged == mergedAcknowledgment
            sendAcknowledgmentIfAdvanced(forceDuplicate: duplicate, into: &output)
            if duplicate { statistics.duplicateAcknowledgments += 1 }
        }
        checkClosed(now: now, into: &output)
    }

    /// Sends every byte both servers have produced, and the FIN once both
    /// reached it at the same place. Returns whether anything was sent.
    private mutating func merge(into output: inout BridgeOutput) -> Bool {
        var sent = false
        while true {
            let length = min(primary.pending.contiguousCount, secondary.pending.contiguousCount)
            if length == 0 { break }
            let start = sentUpTo
            // The run is all either server has produced so far (no more bytes of one wait).
            let runIsWhole = primary.pending.contiguousCount == secondary.pending.contiguousCount
            let fromPrimary = primary.pending.take(length)
            let fromSecondary = secondary.pending.take(length)
            if let offset = ByteComparison.firstDifference(fromPrimary, fromSecondary) {
                let (differing, last) =
                    toleratesSameLength ? ByteComparison.differences(fromPrimary, fromSecondary) : (0, offset)
                // Same length only if the streams are seen to agree again after the difference,
                // or both servers have said exactly this much: a run cut where one server's bytes
                // end may be a shorter, different message (an error where the other succeeded).
                let realigned = runIsWhole || length - last - 1 >= DivergencePolicy.realignmentBytes
                if toleratesSameLength && realigned && differing <= DivergencePolicy.maximumRunBytes
                    && statistics.toleratedBytes + UInt64(differing)
                        <= UInt64(DivergencePolicy.maximumBytesPerConnection)
                {
                    // Same length, a few bytes apart (a timestamp, a pid): the client gets the
                    // primary's version, and the connection stays protected.
                    statistics.toleratedDifferences += 1
                    statistics.toleratedBytes += UInt64(differing)
                    sendData(fromPrimary, at: start, into: &output)
                    sentUpTo = start + UInt32(length)
                    sent = true
                    continue
                }
                diverge(at: start + UInt32(offset), into: &output)
                // The primary's bytes are the ones its kernel will retransmit.
                sendData(fromPrimary, at: start, into: &output)
                sentUpTo = start + UInt32(length)
                flushAlone(.primary, into: &output)
                return true
            }
            sendData(fromSecondary, at: start, into: &output)
            sentUpTo = start + UInt32(length)
            sent = true
        }
        guard !finSent else { return sent }
        let primaryAtFIN = primary.finAt == sentUpTo
        let secondaryAtFIN = secondary.finAt == sentUpTo
        if primaryAtFIN && secondaryAtFIN {
            sendFIN(at: sentUpTo, into: &output)
            finSent = true
            sentUpTo += 1
            primary.pending.advance(to: sentUpTo)
            secondary.pending.advance(to: sentUpTo)
            return true
        }
        // One kernel ended the stream where the other has more to say: the one that goes on
        // wins. An application that dies has its kernel close (or reset) every connection it
        // held, while the other server's goes on serving them; a client is better off with
        // the live server's bytes than with a close it did not ask for.
        if primaryAtFIN && secondary.pending.contiguousCount > 0 {
            output.event(.replicaLost(key, role: .primary, cause: .closedEarly))
            replicaLost(.primary, into: &output)
            return true
        }
        if secondaryAtFIN && primary.pending.contiguousCount > 0 {
            output.event(.replicaLost(key, role: .secondary, cause: .closedEarly))
            replicaLost(.secondary, into: &output)
            return true
        }
        return sent
    }

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
        guard let ack = stream.acknowledged, lastAcknowledgmentSent.map({ $0 < ack }) ?? true else { return }
        let edge = stream.rightEdge ?? ack
        advertisedEdge = advertisedEdge.map { SequenceNumber.later($0, edge) } ?? edge
        let room = advertisedEdge.map { ack < $0 ? UInt32(ack.distance(to: $0)) : 0 } ?? 0
        let window = UInt16(min(UInt32(UInt16.max), room >> UInt32(outputWindowShift)))
        var options: [TCPOption] = []
        if timestampsAgreed, let ts = stream.timestamps {
            options += [.noOperation, .noOperation, .timestamps(value: ts.value, echoReply: ts.echoReply)]
        }
        lastAcknowledgmentSent = ack
        output.send(
            segment(sequence: sentUpTo, acknowledgment: ack, flags: [.ack], window: window, options: options),
            connection: key
        )
        statistics.pureAcknowledgments += 1
    }

    /// The primary refused the client's SYN: once the secondary's SYN-ACK is here, it goes
    /// to the client as it is and the connection is the secondary's alone (Δ stays 0).
    private mutating func serveSecondaryHandshakeAlone(now: MonotonicTime, into output: inout BridgeOutput) {
        guard phase == .handshake, let isnS = secondary.initialSequence, let synS = secondary.handshake else { return }
        var options: [TCPOption] = []
        if let mss = synS.maximumSegmentSize { options.append(.maximumSegmentSize(mss)) }
        if client.handshake.sackPermitted && synS.sackPermitted { options.append(.sackPermitted) }
        if client.handshake.timestamps != nil, let ts = synS.timestamps {
            options.append(.timestamps(value: ts.value, echoReply: ts.echoReply))
        } else if client.handshake.sackPermitted && synS.sackPermitted {
            options.append(contentsOf: [.noOperation, .noOperation])
        }
        if clientUsesWindowScale, let shift = synS.windowScale {
            options.append(contentsOf: [.noOperation, .windowScale(shift)])
        }
        sentUpTo = isnS + 1
        secondary.pending = SequenceRangeStore(base: sentUpTo, capacity: secondary.pending.capacity)
        phase = .secondaryOnly
        phaseSince = now
        let ack = client.initialSequence + 1
        lastAcknowledgmentSent = ack
        output.send(
            segment(sequence: isnS, acknowledgment: ack, flags: [.syn, .ack], window: synS.window, options: options),
            connection: key
        )
    }

    /// In secondary-only mode a secondary segment goes out at once, as it is: it is in the
    /// client's sequence space and carries the secondary's own ACK, window and timestamps.
    private mutating func forwardFromSecondaryAlone(
        _ segment: TCPSegment,
        now: MonotonicTime,
        into output: inout BridgeOutput
    ) {
        let copy = relayed(segment)
        let end = copy.sequenceNumber + copy.sequenceLength
        if sentUpTo < end { sentUpTo = end }
        if copy.flags.contains(.fin) { finSent = true }
        Self.recordAcknowledgment(segment, into: &secondary, shift: windowShift(of: secondary))
        if copy.flags.contains(.ack) {
            lastAcknowledgmentSent =
                lastAcknowledgmentSent.map { SequenceNumber.later($0, copy.acknowledgmentNumber) }
                ?? copy.acknowledgmentNumber
        }
        sendWithinMSS(copy, into: &output)
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
        if !held.isEmpty {
            sendData(held, at: sentUpTo, into: &output)
            sentUpTo += UInt32(held.count)
        }
        let finAt = role == .primary ? primary.finAt : secondary.finAt
        if !finSent, finAt == sentUpTo {
            sendFIN(at: sentUpTo, into: &output)
            finSent = true
            sentUpTo += 1
        }
        update(role == .primary ? .secondary : .primary) { $0.pending.removeAll() }
    }

    /// In primary-only mode a primary segment goes out at once, translated,
    /// carrying the primary's own ACK and window.
    private mutating func forwardFromPrimaryAlone(_ segment: TCPSegment, into output: inout BridgeOutput) {
        var copy = translatedFromPrimary(segment)
        let end = copy.sequenceNumber + copy.sequenceLength
        if sentUpTo < end { sentUpTo = end }
        if copy.flags.contains(.fin) { finSent = true }
        Self.recordAcknowledgment(segment, into: &primary, shift: windowShift(of: primary))
        if copy.flags.contains(.ack) {
            lastAcknowledgmentSent = copy.acknowledgmentNumber
        }
        // The client reads window fields with the secondary's shift.
        if !copy.flags.contains(.syn) {
            let bytes = UInt64(segment.window) << UInt64(windowShift(of: primary))
            copy.window = UInt16(min(UInt64(UInt16.max), bytes >> UInt64(outputWindowShift)))
        }
        sendWithinMSS(copy, into: &output)
    }

    /// Sends a segment of the primary's kernel, translated, in pieces that fit the MSS: the
    /// kernel may have handed over a super-segment (queues take GSO packets whole).
    private func sendWithinMSS(_ segment: TCPPacketFields, into output: inout BridgeOutput) {
        for piece in segment.split(maximumSegmentSize: outputMaximumSegmentSize) {
            output.send(piece, connection: key)
        }
    }

    private static func recordAcknowledgment(_ segment: TCPSegment, into stream: inout ServerStream, shift: UInt8) {
        guard segment.flags.contains(.ack) else { return }
        let ack = segment.acknowledgmentNumber
        if let old = stream.acknowledged, ack < old { return }
        stream.acknowledged = ack
        stream.windowBytes = UInt32(segment.window) << UInt32(shift)
    }

    // MARK: Acknowledgments to the client

    /// The smaller acknowledgment of the two servers, if both have sent one.
    var mergedAcknowledgment: SequenceNumber? {
        guard let a = primary.acknowledged, let b = secondary.acknowledged else { return nil }
        return SequenceNumber.earlier(a, b)
    }

    /// The smaller right edge of the two servers' windows.
    var mergedEdge: SequenceNumber? {
        guard let a = primary.rightEdge, let b = secondary.rightEdge else { return nil }
        return SequenceNumber.earlier(a, b)
    }

    /// Sends a pure ACK when the merged ACK or window edge moved forward with
    /// no data to carry it (paper §3.4: eager acknowledgment).
    private mutating func sendAcknowledgmentIfAdvanced(forceDuplicate: Bool, into output: inout BridgeOutput) {
        guard let ack = mergedAcknowledgment, let edge = mergedEdge else { return }
        let ackAdvanced = lastAcknowledgmentSent.map { $0 < ack } ?? true
        let edgeAdvanced = advertisedEdge.map { $0 < edge } ?? true
        guard ackAdvanced || edgeAdvanced || forceDuplicate else { return }
        output.send(segment(sequence: sentUpTo, acknowledgment: nil, flags: [.ack], payload: []), connection: key)
        statistics.pureAcknowledgments += 1
    }

    /// The window field for a segment acknowledging `ack`, keeping the right
    /// edge the client has already seen (it never moves left).
    private mutating func windowField(for ack: SequenceNumber) -> UInt16 {
        if let edge = mergedEdge {
            advertisedEdge = advertisedEdge.map { SequenceNumber.later($0, edge) } ?? edge
        }
        guard let edge = advertisedEdge, ack < edge else { return 0 }
        let bytes = UInt32(ack.distance(to: edge))
        return UInt16(min(UInt32(UInt16.max), bytes >> UInt32(outputWindowShift)))
    }

    // MARK: Building segments for the client

    /// Sends `bytes` from `start` in segments that fit the MSS together with the options
    /// each carries (timestamps, and SACK blocks while the servers hold out-of-order bytes).
    private mutating func sendData(_ bytes: [UInt8], at start: SequenceNumber, into output: inout BridgeOutput) {
        var offset = 0
        while offset < bytes.count {
            var fields = segment(sequence: start + UInt32(offset), acknowledgment: nil, flags: [.ack], payload: [])
            let optionBytes = fields.tcpHeaderLength - TCPSegment.minimumHeaderLength
            let limit = max(1, outputMaximumSegmentSize - optionBytes)
            let end = min(bytes.count, offset + limit)
            if end == bytes.count { fields.flags = [.ack, .psh] }
            fields.payload = Array(bytes[offset..<end])
            output.send(fields, connection: key)
            statistics.bytesSent += UInt64(end - offset)
            offset = end
        }
    }

    private mutating func sendFIN(at position: SequenceNumber, into output: inout BridgeOutput) {
        output.send(
            segment(sequence: position, acknowledgment: nil, flags: [.fin, .ack], payload: []),
            connection: key
        )
    }

    /// A segment to the client carrying the merged ACK, window, timestamps
    /// and SACK blocks (`acknowledgment: nil`), in the secondary's space.
    private mutating func segment(
        sequence: SequenceNumber,
        acknowledgment: SequenceNumber?,
        flags: TCPFlags,
        payload: [UInt8]
    ) -> TCPPacketFields {
        let ack = acknowledgment ?? mergedAcknowledgment ?? lastAcknowledgmentSent ?? client.initialSequence + 1
        if let last = lastAcknowledgmentSent {
            lastAcknowledgmentSent = SequenceNumber.later(last, ack)
        } else {
            lastAcknowledgmentSent = ack
        }
        let window = windowField(for: ack)
        var options: [TCPOption] = []
        if timestampsAgreed, let ts = secondary.timestamps ?? secondary.handshake?.timestamps {
            options += [.noOperation, .noOperation, .timestamps(value: ts.value, echoReply: ts.echoReply)]
        }
        if sackAgreed, let ackP = primary.acknowledged, let ackS = secondary.acknowledged {
            let blocks = SACKBlocks.shared(
                primary: (ackP, primary.sackBlocks),
                secondary: (ackS, secondary.sackBlocks),
                above: ack,
                limit: timestampsAgreed ? 3 : 4
            )
            if !blocks.isEmpty { options += [.noOperation, .noOperation, .sack(blocks)] }
        }
        return self.segment(
            sequence: sequence,
            acknowledgment: ack,
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    private func segment(
        sequence: SequenceNumber,
        acknowledgment: SequenceNumber,
        flags: TCPFlags,
        window: UInt16,
        options: [TCPOption],
        payload: [UInt8] = []
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: serviceAddress,
            destination: key.clientAddress,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequenceNumber: sequence,
            acknowledgmentNumber: acknowledgment,
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    /// The primary's segment moved into the secondary's space, as it is.
    func translatedFromPrimary(_ segment: TCPSegment) -> TCPPacketFields {
        var fields = relayed(segment)
        fields.sequenceNumber = segment.sequenceNumber - delta
        fields.options = fields.options.map { option in
            if case let .timestamps(value, echo) = option {
                return .timestamps(value: value &- timestampDelta, echoReply: echo)
            }
            return option
        }
        return fields
    }

    /// A server's segment as it is, readdressed from the service address.
    func relayed(_ segment: TCPSegment) -> TCPPacketFields {
        TCPPacketFields(
            source: serviceAddress,
            destination: key.clientAddress,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequenceNumber: segment.sequenceNumber,
            acknowledgmentNumber: segment.acknowledgmentNumber,
            flags: segment.flags,
            window: segment.window,
            urgentPointer: segment.urgentPointer,
            options: segment.options,
            payload: Array(segment.payload)
        )
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

    /// Rewrites a client segment in place for the primary's kernel: ACK and
    /// SACK edges by +Δ, TSecr by +Δts. Returns whether anything changed.
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
        tcp.setAcknowledgmentNumber(ack + delta)
        tcp.mapSACKBlocks { SACKBlock(left: $0.left + delta, right: $0.right + delta) }
        if timestampDelta != 0, let ts = tcp.timestamps {
            tcp.setTimestamps(value: ts.value, echoReply: ts.echoReply &+ timestampDelta)
        }
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
        let expected = [client.sentUpTo, primary.acknowledged, secondary.acknowledged, lastAcknowledgmentSent]
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
            let ackSent = lastAcknowledgmentSent, clientFIN < ackSent,
            let clientAck = client.acknowledged, sentUpTo <= clientAck
        else { return }
        close(reason: .finished, now: now, into: &output)
    }

    private mutating func close(reason: BridgeEvent.CloseReason, now: MonotonicTime, into output: inout BridgeOutput) {
        phase = .closed
        phaseSince = now
        primary.pending.removeAll()
        secondary.pending.removeAll()
        output.event(.connectionClosed(key, reason: reason))
    }

    private mutating func update<T>(_ role: ServerRole, _ body: (inout ServerStream) -> T) -> T {
        role == .primary ? body(&primary) : body(&secondary)
    }
}

/// Per-connection counters, reported by `status`.
public struct ConnectionStatistics: Equatable, Sendable {
    public var segmentsFromPrimary: UInt64 = 0
    public var segmentsFromSecondary: UInt64 = 0
    public var segmentsFromClient: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var pureAcknowledgments: UInt64 = 0
    public var duplicateAcknowledgments: UInt64 = 0
    public var retransmissionsForwarded: UInt64 = 0
    public var divergences: UInt64 = 0
    public var refusedQueueBytes: UInt64 = 0
    public var droppedBeforeHandshake: UInt64 = 0
    public var droppedFromSecondaryAfterDivergence: UInt64 = 0
    public var droppedFromPrimaryAfterReplicaLost: UInt64 = 0
    /// Client resets whose sequence number was not one the client could rightly use: the
    /// connection's state was kept.
    public var unacceptableResets: UInt64 = 0
    /// Client ACKs beyond what was ever sent to it: not counted as its progress.
    public var acknowledgmentsOfUnsentData: UInt64 = 0
    /// Of `refusedQueueBytes`, those refused because the bridge-wide cap was reached.
    public var refusedOverTotalCap: UInt64 = 0
    /// Runs whose bytes differed between the servers but were tolerated (same length, few bytes;
    /// `--divergence same-length`), and how many bytes differed in all.
    public var toleratedDifferences: UInt64 = 0
    public var toleratedBytes: UInt64 = 0
}
