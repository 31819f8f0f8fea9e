import FTCPWire

/// What the secondary's kernel has sent on one connection that the client has
/// not acknowledged yet, kept by the secondary bridge so that it can restart
/// the flow the moment it takes over (FT-TCP's "retransmission gap").
///
/// Before a takeover every segment the secondary's kernel sends goes to the
/// primary. When the primary dies, the segments it had not merged yet are
/// lost with it, and the secondary's kernel would resend them only when its
/// retransmission timer fires (200 ms or more, backed off during the outage).
/// The bridge resends them itself instead, refreshed with the kernel's latest
/// acknowledgment, window and timestamps, and then repeats the kernel's latest
/// acknowledgment so a client that stopped sending learns at once how far the
/// secondary got.
///
/// Everything here is in the secondary's sequence space, which is the one the
/// client sees: no translation is needed.
public struct UnacknowledgedFlight: Sendable {
    /// One segment with sequence space (data, SYN or FIN) the kernel sent.
    struct Retained: Sendable {
        var start: SequenceNumber
        var end: SequenceNumber
        var isSYN: Bool
        var packet: [UInt8]
    }

    private var retained: [Retained] = []
    private var head = 0
    /// Payload and header bytes held.
    public private(set) var retainedBytes = 0
    /// Highest sequence number the kernel has sent (its SND.NXT as far as the bridge saw).
    public private(set) var sendNext: SequenceNumber?
    /// The kernel's latest acknowledgment number, raw window field and SACK blocks.
    private(set) var latestAcknowledgment: SequenceNumber?
    private(set) var latestWindow: UInt16 = 0
    private(set) var latestSACK: [SACKBlock] = []
    private(set) var latestTimestampValue: UInt32?
    private(set) var template: (ttl: UInt8, tos: UInt8)?
    /// What the client last said: its cumulative acknowledgment and timestamps.
    public private(set) var clientAcknowledgment: SequenceNumber?
    private(set) var clientTimestamps: (value: UInt32, echoReply: UInt32)?
    /// The end of the highest sequence the client has sent, as captured.
    private(set) var clientSendNext: SequenceNumber?
    /// Where each side's FIN ends in its own sequence space, once seen.
    private var kernelFINEnd: SequenceNumber?
    private var clientFINEnd: SequenceNumber?
    private var resetSeen = false

    /// Whether the connection is over as far as the wire shows: reset by either side, or
    /// both FINs sent and acknowledged. A closed connection gets no restart packets (the
    /// client has no socket left and would answer them with RSTs).
    public var isClosed: Bool {
        if resetSeen { return true }
        guard let kernelFINEnd, let clientFINEnd, let clientAcknowledgment, let latestAcknowledgment else {
            return false
        }
        return clientAcknowledgment >= kernelFINEnd && latestAcknowledgment >= clientFINEnd
    }

    public init() {}

    /// The kernel sent `packet`. Segments with sequence space are kept (copied)
    /// while `mayRetain` allows; every segment updates the latest state.
    /// Returns whether the packet was kept.
    @discardableResult
    mutating func kernelSent(_ packet: TCPPacket, mayRetain: Bool) -> Bool {
        let tcp = packet.tcp
        let flags = tcp.flags
        if flags.contains(.rst) {
            resetSeen = true
            clear()
            return false
        }
        let start = tcp.sequenceNumber
        let end = start + tcp.sequenceLength
        if flags.contains(.fin) { kernelFINEnd = end }
        if sendNext.map({ end > $0 }) ?? true { sendNext = end }
        if flags.contains(.ack) {
            if latestAcknowledgment.map({ tcp.acknowledgmentNumber >= $0 }) ?? true {
                latestAcknowledgment = tcp.acknowledgmentNumber
                if !flags.contains(.syn) { latestWindow = tcp.window }
                latestSACK = tcp.sackBlocks
            }
        }
        if let timestamps = tcp.timestamps,
            latestTimestampValue.map({ SequenceNumber(timestamps.value) >= SequenceNumber($0) }) ?? true
        {
            latestTimestampValue = timestamps.value
        }
        template = (packet.ip.timeToLive, packet.ip.typeOfService)
        guard tcp.sequenceLength > 0, mayRetain else { return false }
        if let acknowledged = clientAcknowledgment, end <= acknowledged { return false }
        retained.append(Retained(start: start, end: end, isSYN: flags.contains(.syn), packet: Array(packet.bytes)))
        retainedBytes += packet.bytes.count
        return true
    }

    /// The client sent `segment` (captured on the wire): forget what it acknowledges.
    /// Returns how many bytes were released.
    @discardableResult
    mutating func clientSent(_ segment: TCPSegment) -> Int {
        if segment.flags.contains(.rst) {
            guard acceptsReset(sequence: segment.sequenceNumber) else { return 0 }
            resetSeen = true
            let released = retainedBytes
            clear()
            return released
        }
        if let timestamps = segment.timestamps { clientTimestamps = timestamps }
        if segment.flags.contains(.fin) { clientFINEnd = segment.sequenceNumber + segment.sequenceLength }
        let end = segment.sequenceNumber + segment.sequenceLength
        if clientSendNext.map({ end > $0 }) ?? true { clientSendNext = end }
        guard segment.flags.contains(.ack) else { return 0 }
        let acknowledgment = segment.acknowledgmentNumber
        guard clientAcknowledgment.map({ acknowledgment > $0 }) ?? true else { return 0 }
        // An ACK of bytes the kernel never sent is forged (or stray): it releases nothing.
        if let sendNext, acknowledgment > sendNext { return 0 }
        clientAcknowledgment = acknowledgment
        let before = retainedBytes
        while head < retained.count, retained[head].end <= acknowledgment {
            retainedBytes -= retained[head].packet.count
            head += 1
        }
        if head > 64, head * 2 > retained.count {
            retained.removeFirst(head)
            head = 0
        }
        return before - retainedBytes
    }

    /// RFC 5961 §3.2, as the primary bridge judges it: a client's reset counts only with the
    /// sequence number the kernel expects next (its latest acknowledgment) or where the client's
    /// own sending stands; a blind one must guess a 32-bit value.
    func acceptsReset(sequence: SequenceNumber) -> Bool {
        let expected = [latestAcknowledgment, clientSendNext].compactMap { $0 }
        return expected.isEmpty || expected.contains(sequence)
    }

    /// Forgets everything (the connection was reset).
    mutating func clear() {
        retained = []
        head = 0
        retainedBytes = 0
    }

    /// The packets that restart the flow after a takeover, in the order to send them:
    /// every retained segment the client has not acknowledged, in sequence order,
    /// from `serviceAddress`, carrying the kernel's latest acknowledgment and window;
    /// then the kernel's latest acknowledgment on its own, three times (duplicate ACKs
    /// that trigger a client's fast retransmit of anything the secondary lacks).
    /// No bare ACK follows an unacknowledged SYN-ACK: a client still in SYN-SENT
    /// takes only the SYN-ACK. A closed connection (``isClosed``) gets nothing.
    ///
    /// A retained super-segment (the kernel's queue hands them over whole) is resent in pieces
    /// that fit `maximumSegmentSize`, the MSS the client announced.
    func restartPackets(for key: ConnectionKey, serviceAddress: IPv4Address, maximumSegmentSize: Int) -> [[UInt8]] {
        guard !isClosed else { return [] }
        let acknowledged = clientAcknowledgment
        let outstanding = retained[head...]
            .filter { segment in acknowledged.map { segment.end > $0 } ?? true }
            .sorted { $0.start < $1.start }
        let echo = clientTimestamps?.value
        let value = newestTimestampValue
        var packets: [[UInt8]] = []
        var coveredUpTo: SequenceNumber?
        for segment in outstanding {
            // A kernel retransmission can repeat bytes already on the list.
            if let coveredUpTo, segment.end <= coveredUpTo { continue }
            var bytes = segment.packet
            let rewritten: Bool = bytes.withUnsafeMutableBytes { buffer in
                guard let view = try? TCPPacket(validating: buffer) else { return false }
                view.setSource(serviceAddress)
                let tcp = view.tcp
                if !segment.isSYN {
                    if let latestAcknowledgment, tcp.flags.contains(.ack) {
                        tcp.setAcknowledgmentNumber(latestAcknowledgment)
                    }
                    tcp.setWindow(latestWindow)
                    tcp.replaceOptionsWithNoOperations(kind: TCPOption.Kind.sack)
                }
                if let value, let timestamps = tcp.timestamps {
                    tcp.setTimestamps(value: value, echoReply: echo ?? timestamps.echoReply)
                }
                view.updateChecksums()
                return true
            }
            guard rewritten else { continue }
            let pieces = (try? TCPPacketFields(parsing: bytes))?.split(maximumSegmentSize: maximumSegmentSize) ?? []
            if pieces.count > 1 {
                packets += pieces.compactMap { try? $0.build() }
            } else {
                packets.append(bytes)
            }
            coveredUpTo = coveredUpTo.map { segment.end > $0 ? segment.end : $0 } ?? segment.end
        }
        if outstanding.contains(where: \.isSYN) { return packets }
        if let acknowledgment = bareAcknowledgment(for: key, serviceAddress: serviceAddress) {
            packets += Array(repeating: acknowledgment, count: 3)
        }
        return packets
    }

    /// The retained segments the client has not acknowledged, as the kernel sent them, in
    /// sequence order: what the primary is sent again when it can no longer merge digests of
    /// them (`--relay digests`, the primary's replica lost).
    func outstandingPackets() -> [[UInt8]] {
        let acknowledged = clientAcknowledgment
        return retained[head...]
            .filter { segment in !segment.isSYN && (acknowledged.map { segment.end > $0 } ?? true) }
            .sorted { $0.start < $1.start }
            .map(\.packet)
    }

    /// The kernel's latest ACK as a bare segment at SND.NXT, SACK blocks included.
    private func bareAcknowledgment(for key: ConnectionKey, serviceAddress: IPv4Address) -> [UInt8]? {
        guard let latestAcknowledgment, let sendNext else { return nil }
        var options: [TCPOption] = []
        if let value = newestTimestampValue {
            options += [.noOperation, .noOperation, .timestamps(value: value, echoReply: clientTimestamps?.value ?? 0)]
        }
        if !latestSACK.isEmpty {
            options += [.noOperation, .noOperation, .sack(Array(latestSACK.prefix(options.isEmpty ? 4 : 3)))]
        }
        let fields = TCPPacketFields(
            source: serviceAddress,
            destination: key.clientAddress,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequenceNumber: sendNext,
            acknowledgmentNumber: latestAcknowledgment,
            flags: [.ack],
            window: latestWindow,
            options: options,
            timeToLive: template?.ttl ?? 64,
            typeOfService: template?.tos ?? 0
        )
        return try? fields.build()
    }

    /// The newest TSval to put on a resent segment: the kernel's latest, or the
    /// latest the client echoes if the client has seen a newer one from the primary
    /// (an older TSval would be dropped by the client's PAWS check).
    private var newestTimestampValue: UInt32? {
        guard let kernel = latestTimestampValue else { return nil }
        guard let echoed = clientTimestamps?.echoReply else { return kernel }
        return SequenceNumber(echoed) > SequenceNumber(kernel) ? echoed : kernel
    }
}
