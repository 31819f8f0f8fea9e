import Crypto

/// Fuzzes the replication channel's receiving side (`ReplicationOpener`, `ReplayWindow`,
/// `ResendTracker`, compiled into this target with the rest of Sources/FTCPReplication) with a
/// fixed key: a script of datagrams for one opener, each arbitrary bytes, a message sealed by a
/// real `ReplicationSealer`, a datagram tagged with the key from fields and a body of the
/// input's choosing, or an earlier datagram again, as it was or mutated.
///
/// Arbitrary and mutated bytes must be refused with a typed reason, never accepted; authentic
/// datagrams must get exactly the verdict a reference model of the checks (role, epoch, a set
/// of accepted counters for the replay window) predicts; a body the opener accepts must be the
/// one the sealer writes for the message it read; the statistics must count every datagram
/// once; the resend tracker, fed what was accepted as the daemon feeds it, must stay within its
/// bounds.
///
/// Input: a byte for the opener's role, then operations of one opcode byte and their fields
/// (see `fuzzReplicationOpener`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplicationOpener(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let localRole: ReplicationRole = input.bool() ? .primary : .secondary
    var harness = OpenerHarness(localRole: localRole)
    var operations = 0
    while !input.isExhausted && operations < 256 {
        operations += 1
        switch input.byte() % 6 {
        case 0:
            harness.deliverNoise(input.bytes(Int(input.uint16() % 512)))
        case 1:
            harness.deliverSealed(decodeMessage(&input, sender: localRole.peer), sealer: input.index(3))
        case 2:
            let role: ReplicationRole = input.byte() % 5 == 0 ? localRole : localRole.peer
            let epoch = decodeEpoch(&input, harness: harness)
            let counter = decodeCounter(&input, harness: harness)
            let type = input.pick([1, 2, 3, 4, 5, 6, 0, 7, 255] as [UInt8])
            // Mostly this build's format version; now and then another (a peer of another ftcp).
            let versionChoice = input.byte()
            let version = versionChoice < 224 ? ReplicationWireFormat.version : versionChoice % 4
            harness.deliverAuthentic(
                version: version,
                role: role,
                epoch: epoch,
                counter: counter,
                type: type,
                body: decodeBody(&input)
            )
        case 3:
            harness.deliverAgain(index: input.index(max(1, harness.history.count)), mutation: decodeMutation(&input))
        case 4:
            harness.advanceClock(by: UInt64(input.byte()) * UInt64(input.pick([1, 10, 100] as [UInt8])))
        default:
            harness.checkWindowModel(counters: (0..<Int(input.byte() % 32)).map { _ in input.uint16() })
        }
    }
    return 0
}

private let key = try! ReplicationKey(bytes: Array(0..<32) as [UInt8])
private let epochs: [UInt64] = [1_000, 1_001, 5_000_000, UInt64.max - 1, 0]

/// The opener under test, what it must decide (a model of its checks), and what was sent.
private struct OpenerHarness {
    let localRole: ReplicationRole
    var opener: ReplicationOpener
    var sealers: [ReplicationSealer]
    var resends = ResendTracker(window: 2048)
    var nowMilliseconds: UInt64 = 1_000
    /// The model: the peer's current epoch, and the counters accepted in it.
    var peerEpoch: UInt64?
    var acceptedCounters: Set<UInt64> = []
    var newestCounter: UInt64?
    /// Datagrams delivered so far (at most 64), to deliver again.
    var history: [[UInt8]] = []
    var offered: UInt64 = 0
    var accepted: UInt64 = 0

    init(localRole: ReplicationRole) {
        self.localRole = localRole
        opener = ReplicationOpener(key: key, localRole: localRole)
        sealers = epochs.prefix(3).map { ReplicationSealer(key: key, role: localRole.peer, epoch: $0) }
    }

    /// Bytes no holder of the key produced: refused, whatever they are.
    mutating func deliverNoise(_ bytes: [UInt8]) {
        let result = open(bytes)
        guard case let .failure(reason) = result else { fatalError("noise was accepted: \(result)") }
        switch reason {
        case .malformed, .badMAC: break
        default: fatalError("noise refused as \(reason), which needs a valid MAC")
        }
    }

    /// A message sealed by the peer's sealer: accepted unless the model says it is stale.
    mutating func deliverSealed(_ message: ReplicationMessage?, sealer index: Int) {
        guard let message else { return }
        let counter = sealers[index].nextCounter
        let datagram: [UInt8]
        do {
            datagram = try sealers[index].seal(message)
        } catch {
            fatalError("a message of the peer's kind did not seal: \(error)")
        }
        let epoch = sealers[index].epoch
        let result = open(datagram)
        let expected = predict(role: localRole.peer, epoch: epoch, counter: counter)
        switch (result, expected) {
        case let (.success(received), nil):
            require(received.message == message && received.epoch == epoch && received.counter == counter)
            require(received.senderRole == localRole.peer, "sealed \(message), opened \(received)")
            commit(epoch: epoch, counter: counter)
        case let (.failure(reason), expected?):
            require(reason == expected, "a sealed datagram got \(reason), the model says \(expected)")
        default:
            fatalError("a sealed datagram got \(result), the model says \(String(describing: expected))")
        }
    }

    /// A datagram tagged with the key around fields and a body of the fuzzer's choosing.
    mutating func deliverAuthentic(
        version: UInt8,
        role: ReplicationRole,
        epoch: UInt64,
        counter: UInt64,
        type: UInt8,
        body: [UInt8]
    ) {
        var datagram = ReplicationWireFormat.magic + [version, type, role.rawValue, 0]
        datagram.appendBigEndian(epoch)
        datagram.appendBigEndian(counter)
        datagram.appendBigEndian(UInt32(body.count))
        datagram += body
        datagram += HMAC<SHA256>.authenticationCode(for: datagram, using: key.symmetricKey)
        let result = open(datagram)
        let expected: ReplicationDropReason? =
            version != ReplicationWireFormat.version
            ? .incompatibleVersion(peer: version, local: ReplicationWireFormat.version)
            : role == localRole ? .wrongRole(role) : predict(role: role, epoch: epoch, counter: counter)
        switch (result, expected) {
        case let (.success(received), nil):
            require(received.epoch == epoch && received.counter == counter && received.senderRole == role)
            checkCanonical(body, type: type, of: received.message, from: role)
            commit(epoch: epoch, counter: counter)
        case (.failure(.invalidBody), nil):
            break  // the model does not judge bodies; the state must not change (checked by the next datagram)
        case let (.failure(reason), expected?):
            require(reason == expected, "an authentic datagram got \(reason), the model says \(expected)")
        default:
            fatalError("an authentic datagram got \(result), the model says \(String(describing: expected))")
        }
    }

    /// An earlier datagram again: as it was, the model judges it; changed in any way, it must
    /// be refused.
    mutating func deliverAgain(index: Int, mutation: Mutation) {
        guard index < history.count else { return }
        let original = history[index]
        var bytes = original
        mutation.apply(to: &bytes)
        if bytes == original {
            let before = opener.statistics.accepted
            let result = open(bytes)
            if case .success = result {
                // Only a datagram the model would accept: one that was refused before for its
                // body cannot pass now, and an accepted one is a replay.
                fatalError("a datagram delivered again was accepted (accepted before: \(before))")
            }
            return
        }
        let result = open(bytes)
        if case .success = result { fatalError("a mutated datagram was accepted: \(mutation)") }
    }

    mutating func advanceClock(by milliseconds: UInt64) {
        nowMilliseconds += milliseconds
        let due = resends.due(nowMilliseconds: nowMilliseconds)
        checkRanges(due)
        require(resends.missingCount <= Int(resends.window), "the resend tracker holds too many")
    }

    /// The replay window against a set of the counters it accepted.
    func checkWindowModel(counters: [UInt16]) {
        var window = ReplayWindow()
        var seen: Set<UInt64> = []
        var newest: UInt64?
        for raw in counters {
            let counter = UInt64(raw % 4096)
            let fresh = newest.map { counter > $0 || ($0 - counter < 1024 && !seen.contains(counter)) } ?? true
            require((window.verdict(for: counter) == .fresh) == fresh, "the replay window misjudged \(counter)")
            require(window.accept(counter) == fresh)
            if fresh {
                seen.insert(counter)
                newest = max(newest ?? counter, counter)
            }
            require(window.newest == newest)
        }
    }

    // MARK: Model

    /// The reason the opener must give for an authentic datagram from the peer, or nil if it
    /// must accept it (body permitting).
    func predict(role: ReplicationRole, epoch: UInt64, counter: UInt64) -> ReplicationDropReason? {
        if role == localRole { return .wrongRole(role) }
        guard let current = peerEpoch else { return nil }
        if epoch < current { return .oldEpoch(received: epoch, current: current) }
        if epoch > current { return nil }
        if acceptedCounters.contains(counter) { return .replay(epoch: epoch, counter: counter) }
        if let newest = newestCounter, counter < newest, newest - counter >= UInt64(ReplayWindow.size) {
            return .replay(epoch: epoch, counter: counter)
        }
        return nil
    }

    mutating func commit(epoch: UInt64, counter: UInt64) {
        if peerEpoch != epoch {
            peerEpoch = epoch
            acceptedCounters = []
            newestCounter = nil
        }
        acceptedCounters.insert(counter)
        newestCounter = max(newestCounter ?? counter, counter)
        require(opener.peerEpoch == epoch, "the opener's epoch is not the accepted one")
        // As the daemon does with every message it accepts.
        let ranges = resends.received(epoch: epoch, counter: counter, nowMilliseconds: nowMilliseconds)
        checkRanges(ranges)
    }

    /// Opens through both entry points, which must agree, and checks the statistics.
    mutating func open(_ bytes: [UInt8]) -> Result<ReceivedReplicationMessage, ReplicationDropReason> {
        var twin = opener
        let result = opener.open(bytes)
        let viaPointer = bytes.withUnsafeBytes { twin.open($0) }
        require(result == viaPointer && twin.statistics == opener.statistics, "the two open entry points differ")
        offered += 1
        if case .success = result { accepted += 1 }
        let statistics = opener.statistics
        require(statistics.received == offered && statistics.accepted == accepted, "a datagram was not counted once")
        if case let .failure(reason) = result { require(!reason.description.isEmpty) }
        if history.count < 64 && bytes.count <= ReplicationWireFormat.maximumDatagramLength { history.append(bytes) }
        return result
    }

    func checkRanges(_ ranges: [Range<UInt64>]) {
        for range in ranges {
            require(!range.isEmpty && range.count <= Int(resends.window), "a resend range of \(range.count)")
        }
    }
}

/// A body the opener accepted is the one the sealer writes for the message it read (a heartbeat
/// of another version has fewer or more fields, and agrees with it on those both have).
private func checkCanonical(_ body: [UInt8], type: UInt8, of message: ReplicationMessage, from role: ReplicationRole) {
    require(message.kind.rawValue == type && message.kind.isSent(by: role), "accepted \(message) as type \(type)")
    var sealer = ReplicationSealer(key: key, role: role, epoch: 1)
    let sealed: [UInt8]
    do {
        sealed = try sealer.seal(message)
    } catch {
        fatalError("the opener accepted \(message), which the sealer refuses: \(error)")
    }
    let sealedBody = Array(
        sealed[ReplicationWireFormat.headerLength..<(sealed.count - ReplicationWireFormat.tagLength)]
    )
    if case .heartbeat = message {
        // The sealer writes the current version; an older one lacks fields at the end (they
        // seal as zeros: no hardware address, no capabilities) and a later one has more.
        let known = min(body.count, sealedBody.count)
        require(
            body[1..<known] == sealedBody[1..<known] && sealedBody[known...].allSatisfy { $0 == 0 },
            "the heartbeat body \(body) was read as \(message), which seals as \(sealedBody)"
        )
    } else {
        require(body == sealedBody, "the body \(body) was read as \(message), which seals as \(sealedBody)")
    }
}

/// One change to a datagram.
private enum Mutation {
    case flip(index: Int, bit: Int)
    case truncate(Int)
    case extend([UInt8])
    case overwrite(index: Int, bytes: [UInt8])
    case none

    func apply(to bytes: inout [UInt8]) {
        switch self {
        case let .flip(index, bit):
            if !bytes.isEmpty { bytes[index % bytes.count] ^= 1 << UInt8(bit) }
        case let .truncate(count):
            bytes.removeLast(min(count, bytes.count))
        case let .extend(more):
            bytes += more
        case let .overwrite(index, new):
            guard !bytes.isEmpty else { return }
            for (offset, byte) in new.enumerated() { bytes[(index + offset) % bytes.count] = byte }
        case .none:
            break
        }
    }
}

private func decodeMutation(_ input: inout FuzzInput) -> Mutation {
    switch input.byte() % 5 {
    case 0: return .flip(index: Int(input.uint16()), bit: Int(input.byte() % 8))
    case 1: return .truncate(Int(input.byte()) + 1)
    case 2: return .extend(input.bytes(Int(input.byte() % 16) + 1))
    case 3: return .overwrite(index: Int(input.uint16()), bytes: input.bytes(Int(input.byte() % 8) + 1))
    default: return .none
    }
}

private func decodeEpoch(_ input: inout FuzzInput, harness: OpenerHarness) -> UInt64 {
    let choice = input.byte()
    switch choice % 4 {
    case 0: return harness.peerEpoch ?? epochs[0]
    case 1: return (harness.peerEpoch ?? epochs[0]) &+ UInt64(choice >> 2) &- 32
    case 2: return epochs[Int(choice >> 2) % epochs.count]
    default: return input.uint64()
    }
}

private func decodeCounter(_ input: inout FuzzInput, harness: OpenerHarness) -> UInt64 {
    let newest = harness.newestCounter ?? 0
    let choice = input.byte()
    switch choice % 6 {
    case 0: return newest &+ 1
    case 1: return newest &+ UInt64(input.uint16())
    case 2: return newest &- UInt64(input.uint16() % 2100)
    case 3: return newest &- 1023 &- UInt64(choice >> 3) % 3
    case 4: return UInt64.max &- UInt64(choice >> 3)
    default: return input.uint64()
    }
}

/// A body for a hand-made datagram: raw bytes, or close to a valid body of some kind.
private func decodeBody(_ input: inout FuzzInput) -> [UInt8] {
    switch input.byte() % 6 {
    case 0:
        return input.bytes(Int(input.uint16() % 600))
    case 1:
        // Heartbeat: version, state, then fields; any length.
        return [input.byte() % 3, input.byte()] + input.bytes(Int(input.byte() % 40))
    case 2:
        // Resend request: first counter, count.
        var body: [UInt8] = []
        body.appendBigEndian(input.uint64())
        body.appendBigEndian(UInt32(input.uint16()) % 1100)
        return body + input.bytes(Int(input.byte() % 3))
    case 3:
        // Segments: a count, then length-prefixed packets, lengths off by a little at times.
        let count = Int(input.byte() % 6)
        var body: [UInt8] = []
        body.appendBigEndian(UInt16(count + Int(input.byte() % 2)))
        for _ in 0..<count {
            let length = Int(input.byte() % 40)
            body.appendBigEndian(UInt16(length) &+ UInt16(input.byte() % 3) &- 1)
            body += [UInt8](repeating: 0x45, count: length)
        }
        return body
    case 4:
        // Digests: a count, then entries whose lengths are off by a little at times.
        let count = Int(input.byte() % 3)
        var body: [UInt8] = []
        body.appendBigEndian(UInt16(count + Int(input.byte() % 2)))
        for _ in 0..<count {
            let header = Int(input.byte() % 60)
            body.appendBigEndian(UInt16(header) &+ UInt16(input.byte() % 3) &- 1)
            body += [UInt8](repeating: 0x45, count: header)
            let payload = UInt32(input.uint16())
            let piece = UInt16(input.byte()) &+ UInt16(input.byte() % 2)
            body.appendBigEndian(payload)
            body.appendBigEndian(piece)
            let pieces = DigestedSegment.pieceCount(payloadLength: payload, pieceLength: piece)
            body += [UInt8](repeating: 7, count: max(0, min(4000, pieces * 16 + Int(input.byte() % 3) - 1)))
        }
        return body
    default:
        // Released: a count, then 8-byte connection names.
        let count = Int(input.byte() % 5)
        var body: [UInt8] = []
        body.appendBigEndian(UInt16(count) &+ UInt16(input.byte() % 3) &- 1)
        for _ in 0..<count {
            let name = input.bytes(8)
            body += name + [UInt8](repeating: 0, count: 8 - name.count)
        }
        return body
    }
}

/// A message of a kind `sender` sends (nil for none), with fields from the input.
private func decodeMessage(_ input: inout FuzzInput, sender: ReplicationRole) -> ReplicationMessage? {
    func packet() -> [UInt8] { [0x45] + input.bytes(Int(input.uint16() % 1600)) }
    let kinds = ReplicationMessage.Kind.allCases.filter { $0.isSent(by: sender) }
    switch input.pick(kinds) {
    case .segment: return .segment(packet: packet())
    case .inject: return .inject(packet: packet())
    case .heartbeat:
        // Six bytes not all zero, or none: the sealer sends no other (all zero is the wire's
        // none; the input may run out).
        let address = input.byte() % 2 == 0 ? [] : input.bytes(6)
        return .heartbeat(
            ReplicationHeartbeat(
                sentAtMilliseconds: input.uint64(),
                state: input.byte(),
                connectionCount: input.uint32(),
                sawPeerTrafficAtMilliseconds: input.uint64(),
                hardwareAddress: address.count == 6 && address.contains { $0 != 0 } ? address : nil,
                capabilities: ReplicationCapabilities(rawValue: input.byte())
            )
        )
    case .resendRequest:
        return .resendRequest(firstCounter: input.uint64(), count: UInt32(input.uint16() % 1024) + 1)
    case .segments:
        return .segments(packets: (0..<(Int(input.byte() % 8) + 1)).map { _ in packet() })
    case .released, .relayWhole:
        let connections = (0..<(Int(input.byte() % 8) + 1)).map { _ in
            ReplicatedConnectionID(clientAddress: input.uint32(), clientPort: input.uint16(), serverPort: 80)
        }
        return input.byte() % 2 == 0 ? .released(connections: connections) : .relayWhole(connections: connections)
    case .digests:
        return .digests(
            segments: (0..<(Int(input.byte() % 4) + 1)).map { _ in
                let payloadLength = UInt32(input.uint16() % 6000) + 1
                // At most 200 pieces, so that four such segments fit one datagram.
                let pieceLength = max(UInt16(input.uint16() % 1500) + 1, UInt16(payloadLength / 200) + 1)
                let pieces = DigestedSegment.pieceCount(payloadLength: payloadLength, pieceLength: pieceLength)
                let digests = input.bytes(pieces * DigestedSegment.digestLength)
                return DigestedSegment(
                    header: [0x45] + input.bytes(Int(input.byte() % 60)),
                    payloadLength: payloadLength,
                    pieceLength: pieceLength,
                    digests: digests
                        + [UInt8](repeating: 0, count: pieces * DigestedSegment.digestLength - digests.count)
                )
            }
        )
    }
}
