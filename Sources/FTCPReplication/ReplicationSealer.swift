import Crypto

/// Turns replication messages into authenticated datagrams, numbering them.
///
/// One sealer per bridge process: it stamps every datagram with the bridge's role, its epoch and
/// the next counter, then appends an HMAC-SHA256 tag over the whole datagram (the layout is
/// documented on `ReplicationWireFormat`). The epoch must be greater than any epoch this bridge
/// used before (wall-clock microseconds at process start, for example): the peer drops datagrams
/// from an older epoch as replays, so a clock stepped backwards across a restart silences the
/// bridge until its peer restarts too.
///
/// The sealer does no I/O and reads no clock.
public struct ReplicationSealer: Sendable {
    /// The role stamped on every datagram.
    public let role: ReplicationRole
    /// The epoch stamped on every datagram.
    public let epoch: UInt64
    /// The counter the next datagram will carry.
    public private(set) var nextCounter: UInt64 = 0
    private let key: ReplicationKey

    /// The largest packet a segment or inject message can carry.
    public static let maximumPacketLength = ReplicationWireFormat.maximumBodyLength
    /// The largest datagram ``seal(_:)`` produces.
    public static let maximumDatagramLength = ReplicationWireFormat.maximumDatagramLength

    public init(key: ReplicationKey, role: ReplicationRole, epoch: UInt64) {
        self.key = key
        self.role = role
        self.epoch = epoch
    }

    /// Seals `message` into one datagram and advances the counter.
    ///
    /// - Throws: ``ReplicationError`` if the packet is empty or too large, if this role never
    ///   sends this kind of message, or if the counter is exhausted. The counter does not advance
    ///   on failure.
    public mutating func seal(_ message: ReplicationMessage) throws(ReplicationError) -> [UInt8] {
        let kind = message.kind
        guard kind.isSent(by: role) else { throw .wrongDirection(kind: kind, sender: role) }
        guard nextCounter < UInt64.max else { throw .counterExhausted(epoch: epoch) }

        let bodyLength: Int
        switch message {
        case let .segment(packet), let .inject(packet):
            guard !packet.isEmpty else { throw .emptyPacket }
            guard packet.count <= Self.maximumPacketLength else {
                throw .packetTooLarge(size: packet.count, limit: Self.maximumPacketLength)
            }
            bodyLength = packet.count
        case .heartbeat:
            bodyLength = ReplicationWireFormat.heartbeatWithCapabilitiesLength
        case let .resendRequest(_, count):
            guard count >= 1, count <= ReplicationWireFormat.maximumResendCount else {
                throw .resendCountOutOfRange(count: count, limit: ReplicationWireFormat.maximumResendCount)
            }
            bodyLength = ReplicationWireFormat.resendRequestLength
        case let .segments(packets):
            bodyLength = try Self.segmentsBodyLength(packets)
        case let .digests(segments):
            guard !segments.isEmpty, segments.count <= Int(UInt16.max), segments.allSatisfy(\.isWellFormed) else {
                throw .emptyPacket
            }
            bodyLength = 2 + segments.reduce(0) { $0 + $1.encodedLength }
            guard bodyLength <= ReplicationWireFormat.maximumBodyLength else {
                throw .packetTooLarge(size: bodyLength, limit: ReplicationWireFormat.maximumBodyLength)
            }
        case let .released(connections), let .relayWhole(connections):
            guard (1...ReplicationWireFormat.maximumReleasedCount).contains(connections.count) else {
                throw .releasedCountOutOfRange(
                    count: connections.count,
                    limit: ReplicationWireFormat.maximumReleasedCount
                )
            }
            bodyLength = 2 + ReplicationWireFormat.releasedEntryLength * connections.count
        }

        var datagram: [UInt8] = []
        datagram.reserveCapacity(ReplicationWireFormat.headerLength + bodyLength + ReplicationWireFormat.tagLength)
        datagram.append(contentsOf: ReplicationWireFormat.magic)
        datagram.append(ReplicationWireFormat.version)
        datagram.append(kind.rawValue)
        datagram.append(role.rawValue)
        datagram.append(0)
        datagram.appendBigEndian(epoch)
        datagram.appendBigEndian(nextCounter)
        datagram.appendBigEndian(UInt32(bodyLength))

        switch message {
        case let .segment(packet), let .inject(packet):
            datagram.append(contentsOf: packet)
        case let .heartbeat(heartbeat):
            let hardwareAddress = heartbeat.hardwareAddress.flatMap { $0.count == 6 ? $0 : nil }
            datagram.append(ReplicationWireFormat.heartbeatWithCapabilitiesVersion)
            datagram.append(heartbeat.state)
            datagram.appendBigEndian(heartbeat.sentAtMilliseconds)
            datagram.appendBigEndian(heartbeat.connectionCount)
            datagram.appendBigEndian(heartbeat.sawPeerTrafficAtMilliseconds)
            datagram.append(contentsOf: hardwareAddress ?? [0, 0, 0, 0, 0, 0])
            datagram.append(heartbeat.capabilities.rawValue)
        case let .resendRequest(firstCounter, count):
            datagram.appendBigEndian(firstCounter)
            datagram.appendBigEndian(count)
        case let .segments(packets):
            datagram.appendBigEndian(UInt16(packets.count))
            for packet in packets {
                datagram.appendBigEndian(UInt16(packet.count))
                datagram.append(contentsOf: packet)
            }
        case let .digests(segments):
            datagram.appendBigEndian(UInt16(segments.count))
            for segment in segments {
                datagram.appendBigEndian(UInt16(segment.header.count))
                datagram.append(contentsOf: segment.header)
                datagram.appendBigEndian(segment.payloadLength)
                datagram.appendBigEndian(segment.pieceLength)
                datagram.append(contentsOf: segment.digests)
            }
        case let .released(connections), let .relayWhole(connections):
            datagram.appendBigEndian(UInt16(connections.count))
            for connection in connections {
                datagram.appendBigEndian(connection.clientAddress)
                datagram.appendBigEndian(connection.clientPort)
                datagram.appendBigEndian(connection.serverPort)
            }
        }
        assert(datagram.count == ReplicationWireFormat.headerLength + bodyLength)

        let tag = HMAC<SHA256>.authenticationCode(for: datagram, using: key.symmetricKey)
        datagram.append(contentsOf: tag)
        nextCounter += 1
        return datagram
    }

    /// The most connections one released message names.
    public static let maximumReleasedPerMessage = ReplicationWireFormat.maximumReleasedCount

    /// The body length of a segments message, or why it cannot be sealed.
    static func segmentsBodyLength(_ packets: [[UInt8]]) throws(ReplicationError) -> Int {
        guard !packets.isEmpty, packets.count <= Int(UInt16.max) else { throw .emptyPacket }
        var length = ReplicationWireFormat.segmentsCountLength
        for packet in packets {
            guard !packet.isEmpty else { throw .emptyPacket }
            length += ReplicationWireFormat.segmentsLengthFieldLength + packet.count
        }
        guard length <= ReplicationWireFormat.maximumBodyLength else {
            throw .packetTooLarge(size: length, limit: ReplicationWireFormat.maximumBodyLength)
        }
        return length
    }

    /// The bytes a packet adds to a segments message: what a sender filling one to a size counts.
    public static func segmentsCost(ofPacket length: Int) -> Int {
        ReplicationWireFormat.segmentsLengthFieldLength + length
    }

    /// The datagram length of a digests message of these segments.
    public static func digestsDatagramLength(_ segments: [DigestedSegment]) -> Int {
        ReplicationWireFormat.headerLength + 2 + segments.reduce(0) { $0 + $1.encodedLength }
            + ReplicationWireFormat.tagLength
    }

    /// The datagram length of a segments message whose packets cost `packetCost` in all.
    public static func segmentsDatagramLength(packetCost: Int) -> Int {
        ReplicationWireFormat.headerLength + ReplicationWireFormat.segmentsCountLength + packetCost
            + ReplicationWireFormat.tagLength
    }
}
