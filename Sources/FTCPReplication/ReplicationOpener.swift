import Crypto

/// Checks datagrams received on the replication channel and opens the ones that are authentic,
/// from the peer, and new.
///
/// The checks run in this order, and the first that fails drops the datagram with its
/// ``ReplicationDropReason``:
/// 1. fixed header: length, magic, version, reserved byte, role value, body length (no hashing
///    is spent on noise); a datagram of another format version is checked only for its
///    envelope and its tag, and if authentic dropped as
///    ``ReplicationDropReason/incompatibleVersion(peer:local:)`` so that the node can say so;
/// 2. the HMAC-SHA256 tag, compared in constant time by swift-crypto;
/// 3. the sender's role must be the peer's: a datagram claiming our own role is a reflection;
/// 4. replay: an epoch below the peer's current one is dropped; within the current epoch a
///    ``ReplayWindow`` accepts each counter once, in any order, within 1024 of the newest;
/// 5. the body must be well formed, and of a kind the sender's role sends.
///
/// Only a datagram that passes everything changes state: a greater epoch then replaces the
/// current one (the peer restarted) with a fresh window. Nothing traps on any input; every
/// outcome is counted in ``statistics``. The opener does no I/O and reads no clock.
public struct ReplicationOpener: Sendable {
    /// The role of the bridge that receives; datagrams must come from its peer.
    public let localRole: ReplicationRole
    /// What the opener has accepted and dropped so far.
    public private(set) var statistics = ReplicationStatistics()
    /// The peer's current epoch: the greatest epoch of any accepted datagram, nil before the first.
    public private(set) var peerEpoch: UInt64?
    /// The format version of the last authentic datagram this build could not read, if any:
    /// the peer runs an incompatible ftcp (see ``ReplicationDropReason/incompatibleVersion(peer:local:)``).
    public private(set) var incompatiblePeerVersion: UInt8?
    /// The format version this build writes and reads.
    public static var formatVersion: UInt8 { ReplicationWireFormat.version }
    private var window = ReplayWindow()
    private let key: ReplicationKey

    public init(key: ReplicationKey, localRole: ReplicationRole) {
        self.key = key
        self.localRole = localRole
    }

    /// Checks and opens one received datagram.
    public mutating func open(_ datagram: UnsafeRawBufferPointer) -> Result<
        ReceivedReplicationMessage, ReplicationDropReason
    > {
        let result = check(datagram)
        switch result {
        case .success: statistics.accepted &+= 1
        case let .failure(reason): statistics.count(reason)
        }
        return result
    }

    /// Checks and opens one received datagram held in any collection of bytes.
    public mutating func open<Bytes: Collection<UInt8>>(_ datagram: Bytes) -> Result<
        ReceivedReplicationMessage, ReplicationDropReason
    > {
        let count = datagram.count
        guard count <= ReplicationWireFormat.maximumDatagramLength else {
            // Refused before copying anything.
            let reason = ReplicationDropReason.malformed(.badLength(count))
            statistics.count(reason)
            return .failure(reason)
        }
        if let result = datagram.withContiguousStorageIfAvailable({ open(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(datagram).withUnsafeBytes { open($0) }
    }

    // MARK: - Checks

    private typealias Format = ReplicationWireFormat

    private mutating func check(_ datagram: UnsafeRawBufferPointer) -> Result<
        ReceivedReplicationMessage, ReplicationDropReason
    > {
        // 1. Fixed header.
        let length = datagram.count
        guard length >= Format.minimumDatagramLength, length <= Format.maximumDatagramLength else {
            return .failure(.malformed(.badLength(length)))
        }
        guard datagram[Format.Field.magic].elementsEqual(Format.magic) else {
            return .failure(.malformed(.badMagic))
        }
        let version = datagram[Format.Field.version]
        guard version == Format.version else { return checkForeignVersion(version, datagram) }
        let reserved = datagram[Format.Field.reserved]
        guard reserved == 0 else { return .failure(.malformed(.reservedNotZero(reserved))) }
        let roleByte = datagram[Format.Field.role]
        guard let senderRole = ReplicationRole(rawValue: roleByte) else {
            return .failure(.malformed(.unknownRole(roleByte)))
        }
        let bodyEnd: Int
        switch Self.bodyEnd(of: datagram) {
        case let .success(end): bodyEnd = end
        case let .failure(reason): return .failure(reason)
        }

        // 2. MAC over everything before the tag.
        guard isAuthentic(datagram, bodyEnd: bodyEnd) else { return .failure(.badMAC) }

        // 3. Reflection.
        guard senderRole == localRole.peer else { return .failure(.wrongRole(senderRole)) }

        // 4. Replay.
        let epoch = datagram.readBigEndian(Format.Field.epoch, as: UInt64.self)
        let counter = datagram.readBigEndian(Format.Field.counter, as: UInt64.self)
        if let current = peerEpoch {
            guard epoch >= current else { return .failure(.oldEpoch(received: epoch, current: current)) }
            if epoch == current, window.verdict(for: counter) != .fresh {
                return .failure(.replay(epoch: epoch, counter: counter))
            }
        }

        // 5. Body.
        let body = UnsafeRawBufferPointer(rebasing: datagram[Format.headerLength..<bodyEnd])
        let message: ReplicationMessage
        switch Self.parseBody(body, type: datagram[Format.Field.messageType], sender: senderRole) {
        case let .success(parsed): message = parsed
        case let .failure(reason): return .failure(reason)
        }

        // Accepted: commit.
        if peerEpoch != epoch {
            peerEpoch = epoch
            window = ReplayWindow()
            statistics.peerEpochChanges &+= 1
        }
        window.accept(counter)
        return .success(
            ReceivedReplicationMessage(message: message, senderRole: senderRole, epoch: epoch, counter: counter)
        )
    }

    /// A datagram of another format version: only its envelope (magic, body length, tag) is
    /// known. If the tag is authentic, the peer holds the key and runs an incompatible ftcp,
    /// which the node must say; otherwise it is noise like any other.
    private mutating func checkForeignVersion(_ version: UInt8, _ datagram: UnsafeRawBufferPointer) -> Result<
        ReceivedReplicationMessage, ReplicationDropReason
    > {
        switch Self.bodyEnd(of: datagram) {
        case let .success(bodyEnd):
            guard isAuthentic(datagram, bodyEnd: bodyEnd) else { return .failure(.badMAC) }
        case let .failure(reason):
            return .failure(reason)
        }
        incompatiblePeerVersion = version
        return .failure(.incompatibleVersion(peer: version, local: Format.version))
    }

    /// Where the body ends, if the body length field agrees with the datagram's length (part of
    /// the envelope every format version keeps).
    private static func bodyEnd(of datagram: UnsafeRawBufferPointer) -> Result<Int, ReplicationDropReason> {
        let declared = datagram.readBigEndian(Format.Field.bodyLength, as: UInt32.self)
        guard declared <= UInt32(Format.maximumBodyLength),
            Format.headerLength + Int(declared) + Format.tagLength == datagram.count
        else {
            return .failure(.malformed(.bodyLengthMismatch(declared: declared, datagramLength: datagram.count)))
        }
        return .success(Format.headerLength + Int(declared))
    }

    /// Whether the tag after `bodyEnd` is the HMAC of everything before it under the key.
    private func isAuthentic(_ datagram: UnsafeRawBufferPointer, bodyEnd: Int) -> Bool {
        let authenticated = UnsafeRawBufferPointer(rebasing: datagram[0..<bodyEnd])
        let tag = UnsafeRawBufferPointer(rebasing: datagram[bodyEnd...])
        return HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: authenticated, using: key.symmetricKey)
    }

    private static func parseBody(
        _ body: UnsafeRawBufferPointer,
        type: UInt8,
        sender: ReplicationRole
    ) -> Result<ReplicationMessage, ReplicationDropReason> {
        guard let kind = ReplicationMessage.Kind(rawValue: type) else {
            return .failure(.invalidBody(.unknownMessageType(type)))
        }
        guard kind.isSent(by: sender) else {
            return .failure(.invalidBody(.wrongDirection(kind: kind, sender: sender)))
        }
        switch kind {
        case .segment, .inject:
            guard !body.isEmpty else { return .failure(.invalidBody(.emptyPacket)) }
            let packet = Array(body)
            return .success(kind == .segment ? .segment(packet: packet) : .inject(packet: packet))
        case .heartbeat:
            guard let version = body.first else { return .failure(.invalidBody(.badHeartbeat(version: 0, length: 0))) }
            let fits =
                switch version {
                case 0: false
                case Format.heartbeatVersion: body.count == Format.heartbeatLength
                case Format.heartbeatWithHardwareAddressVersion: body.count == Format.heartbeatWithHardwareAddressLength
                case Format.heartbeatWithCapabilitiesVersion: body.count == Format.heartbeatWithCapabilitiesLength
                default: body.count >= Format.heartbeatWithCapabilitiesLength
                }
            guard fits else { return .failure(.invalidBody(.badHeartbeat(version: version, length: body.count))) }
            var hardwareAddress =
                version >= Format.heartbeatWithHardwareAddressVersion
                ? Array(body[Format.HeartbeatField.hardwareAddress]) : nil
            if version >= Format.heartbeatWithCapabilitiesVersion, hardwareAddress?.allSatisfy({ $0 == 0 }) == true {
                hardwareAddress = nil  // version 3 from a sender that names none
            }
            let capabilities: ReplicationCapabilities =
                version >= Format.heartbeatWithCapabilitiesVersion
                ? ReplicationCapabilities(rawValue: body[Format.HeartbeatField.capabilities]) : []
            return .success(
                .heartbeat(
                    ReplicationHeartbeat(
                        sentAtMilliseconds: body.readBigEndian(Format.HeartbeatField.sentAt),
                        state: body[Format.HeartbeatField.state],
                        connectionCount: body.readBigEndian(Format.HeartbeatField.connectionCount),
                        sawPeerTrafficAtMilliseconds: body.readBigEndian(Format.HeartbeatField.sawPeerTrafficAt),
                        hardwareAddress: hardwareAddress,
                        capabilities: capabilities
                    )
                )
            )
        case .resendRequest:
            guard body.count == Format.resendRequestLength else {
                return .failure(.invalidBody(.badResendRequest(length: body.count)))
            }
            let first: UInt64 = body.readBigEndian(0..<8)
            let count: UInt32 = body.readBigEndian(8..<12)
            guard count >= 1, count <= Format.maximumResendCount else {
                return .failure(.invalidBody(.badResendRequest(length: body.count)))
            }
            return .success(.resendRequest(firstCounter: first, count: count))
        case .segments:
            return parseSegments(body)
        case .released, .relayWhole:
            return parseReleased(body, kind: kind)
        case .digests:
            return parseDigests(body)
        }
    }

    /// A digests body: a count, then that many entries (see ``ReplicationWireFormat``), filling it
    /// exactly.
    private static func parseDigests(_ body: UnsafeRawBufferPointer) -> Result<
        ReplicationMessage, ReplicationDropReason
    > {
        let malformed = Result<ReplicationMessage, ReplicationDropReason>.failure(
            .invalidBody(.badDigests(length: body.count))
        )
        guard body.count >= 2 else { return malformed }
        let count = Int(body.readBigEndian(0..<2, as: UInt16.self))
        guard count >= 1 else { return malformed }
        var segments: [DigestedSegment] = []
        var offset = 2
        for _ in 0..<count {
            guard offset + 2 <= body.count else { return malformed }
            let headerLength = Int(body.readBigEndian(offset..<offset + 2, as: UInt16.self))
            offset += 2
            guard offset + headerLength + 6 <= body.count else { return malformed }
            let header = Array(body[offset..<offset + headerLength])
            offset += headerLength
            let payloadLength: UInt32 = body.readBigEndian(offset..<offset + 4)
            let pieceLength: UInt16 = body.readBigEndian(offset + 4..<offset + 6)
            offset += 6
            let digestBytes =
                DigestedSegment.pieceCount(payloadLength: payloadLength, pieceLength: pieceLength)
                * DigestedSegment.digestLength
            guard offset + digestBytes <= body.count else { return malformed }
            let segment = DigestedSegment(
                header: header,
                payloadLength: payloadLength,
                pieceLength: pieceLength,
                digests: Array(body[offset..<offset + digestBytes])
            )
            guard segment.isWellFormed else { return malformed }
            segments.append(segment)
            offset += digestBytes
        }
        guard offset == body.count else { return malformed }
        return .success(.digests(segments: segments))
    }

    /// A released (or relay whole) body: a count, then that many 8-byte connection names,
    /// filling it exactly.
    private static func parseReleased(_ body: UnsafeRawBufferPointer, kind: ReplicationMessage.Kind) -> Result<
        ReplicationMessage, ReplicationDropReason
    > {
        let malformed = Result<ReplicationMessage, ReplicationDropReason>.failure(
            .invalidBody(.badReleased(length: body.count))
        )
        guard body.count >= 2 else { return malformed }
        let count = Int(body.readBigEndian(0..<2, as: UInt16.self))
        guard (1...Format.maximumReleasedCount).contains(count),
            body.count == 2 + Format.releasedEntryLength * count
        else { return malformed }
        var connections: [ReplicatedConnectionID] = []
        connections.reserveCapacity(count)
        for index in 0..<count {
            let offset = 2 + index * Format.releasedEntryLength
            connections.append(
                ReplicatedConnectionID(
                    clientAddress: body.readBigEndian(offset..<offset + 4),
                    clientPort: body.readBigEndian(offset + 4..<offset + 6),
                    serverPort: body.readBigEndian(offset + 6..<offset + 8)
                )
            )
        }
        return .success(
            kind == .relayWhole ? .relayWhole(connections: connections) : .released(connections: connections)
        )
    }

    /// A segments body: a count, then that many length-prefixed packets, filling it exactly.
    private static func parseSegments(_ body: UnsafeRawBufferPointer) -> Result<
        ReplicationMessage, ReplicationDropReason
    > {
        let malformed = Result<ReplicationMessage, ReplicationDropReason>.failure(
            .invalidBody(.badSegments(length: body.count))
        )
        guard body.count >= Format.segmentsCountLength else { return malformed }
        let count = Int(body.readBigEndian(0..<2, as: UInt16.self))
        guard count >= 1 else { return malformed }
        var packets: [[UInt8]] = []
        packets.reserveCapacity(count)
        var offset = Format.segmentsCountLength
        for _ in 0..<count {
            guard offset + Format.segmentsLengthFieldLength <= body.count else { return malformed }
            let length = Int(body.readBigEndian(offset..<offset + 2, as: UInt16.self))
            offset += Format.segmentsLengthFieldLength
            guard length >= 1, offset + length <= body.count else { return malformed }
            packets.append(Array(body[offset..<offset + length]))
            offset += length
        }
        guard offset == body.count else { return malformed }
        return .success(.segments(packets: packets))
    }
}
