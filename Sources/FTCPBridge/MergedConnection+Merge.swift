import FTCPWire

/// The merge of the servers' output (paper §3.2) and the digests that stand for the
/// secondary's bytes: the part of ``MergedConnection`` that decides what the client may be sent.
extension MergedConnection {
    // MARK: The merge (§3.2)

    mutating func serverSegment(
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
    mutating func claim(_ digest: PayloadDigest, at start: SequenceNumber, length: Int) {
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
    mutating func merge(into output: inout BridgeOutput) -> Bool {
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
}
