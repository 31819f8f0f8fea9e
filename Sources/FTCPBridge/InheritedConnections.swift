import FTCPWire

/// The connections a node took over from a failed primary, once it serves as primary itself.
///
/// Their sockets in this node's kernel were opened while it was the secondary, so they are
/// bound to the node's own address, while their clients know only the service address. Until
/// they close they are translated between the two, and nothing else: they have no replica
/// anywhere (the peer that joined later never saw their handshake), so they are served
/// unprotected, as after any takeover. Connections opened after the node became primary are
/// on the service address and go through the merge.
public struct InheritedConnections: Sendable {
    /// The main service address: where a connection whose own is not known was opened.
    public let serviceAddress: IPv4Address
    /// The node's own address, where the inherited sockets are bound.
    public let nodeAddress: IPv4Address
    /// What is known of one inherited connection.
    public struct Entry: Equatable, Sendable {
        /// The service address its client knows.
        public var serviceAddress: IPv4Address
        /// When a segment of it was last translated.
        public var lastSeen: MonotonicTime
        public var finFromClient = false
        public var finFromKernel = false
        /// Adopted after the takeover (``InheritedConnections/adoptRelated(_:now:)``), not taken over.
        public var adopted = false
        /// Both sides have sent their FIN: closed but for the last acknowledgments.
        public var isClosing: Bool { finFromClient && finFromKernel }
    }

    public private(set) var entries: [ConnectionKey: Entry]
    /// How long a connection whose both FINs were seen is still translated (its last ACK, a
    /// retransmitted FIN) before it is forgotten.
    public static let closingLingerMilliseconds: UInt64 = 10_000
    public private(set) var translatedFromClients: UInt64 = 0
    public private(set) var translatedFromKernel: UInt64 = 0
    /// Connections forgotten after a reset or after going idle.
    public private(set) var forgotten: UInt64 = 0

    /// - Parameters:
    ///   - closing: those of `keys` whose both FINs were already seen.
    ///   - serviceAddresses: the service address of each key opened to another than `serviceAddress`.
    public init(
        serviceAddress: IPv4Address,
        nodeAddress: IPv4Address,
        keys: some Sequence<ConnectionKey>,
        serviceAddresses: [ConnectionKey: IPv4Address] = [:],
        closing: Set<ConnectionKey> = [],
        now: MonotonicTime
    ) {
        self.serviceAddress = serviceAddress
        self.nodeAddress = nodeAddress
        entries = Dictionary(
            keys.map { key in
                let closed = closing.contains(key)
                let entry = Entry(
                    serviceAddress: serviceAddresses[key] ?? serviceAddress,
                    lastSeen: now,
                    finFromClient: closed,
                    finFromKernel: closed
                )
                return (key, entry)
            },
            uniquingKeysWith: { first, _ in first }
        )
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    /// Connections not yet closing: what a planned switchover would lose.
    public var openCount: Int { entries.values.filter { !$0.isClosing }.count }
    public func contains(_ key: ConnectionKey) -> Bool { entries[key] != nil }

    /// A client's segment to the service address: an inherited connection's is readdressed in
    /// place to the node's own address, where its socket is. Returns whether it was.
    public mutating func clientSegment(_ packet: TCPPacket, now: MonotonicTime) -> Bool {
        let key = ConnectionKey(clientSegment: packet)
        guard let entry = entries[key], packet.ip.destination == entry.serviceAddress else { return false }
        packet.setDestination(nodeAddress)
        translatedFromClients += 1
        noteSegment(key, flags: packet.tcp.flags, fromClient: true, now: now)
        return true
    }

    /// Connections adopted by ``adoptRelated(_:now:)``.
    public private(set) var adopted: UInt64 = 0
    /// Most entries, adopted ones included.
    public static let limit = 16_384

    /// A client's SYN to a service address from a client that still has an inherited connection
    /// open to it. The application serves that client's session on this node from the node's own
    /// address, and may have opened a listener for it there (vsftpd's passive data port listens on
    /// the control connection's local address), so the new connection is served from there too
    /// and joins the inherited ones; it shares their fate (unprotected until it closes). Returns
    /// whether it was adopted; ``clientSegment(_:now:)`` then translates it.
    public mutating func adoptRelated(_ packet: TCPPacket, now: MonotonicTime) -> Bool {
        let flags = packet.tcp.flags
        let client = packet.ip.source
        let service = packet.ip.destination
        let key = ConnectionKey(
            clientAddress: client,
            clientPort: packet.tcp.sourcePort,
            serverPort: packet.tcp.destinationPort
        )
        guard flags.contains(.syn), !flags.contains(.ack), entries[key] == nil, entries.count < Self.limit,
            entries.contains(where: {
                $0.key.clientAddress == client && $0.value.serviceAddress == service && !$0.value.isClosing
                    && !$0.value.adopted
            })
        else { return false }
        // Only a connection taken over at the takeover vouches for new ones: an adopted one does
        // not, or a client that always has one open would never be protected again.
        entries[key] = Entry(serviceAddress: service, lastSeen: now, adopted: true)
        adopted += 1
        return true
    }

    /// A segment the node's kernel sends from its own address: an inherited connection's leaves
    /// from the service address, as its client has always seen it. Returns whether it was
    /// rewritten (anything else from the node's own address is not this type's business).
    public mutating func kernelSegment(_ packet: TCPPacket, now: MonotonicTime) -> Bool {
        let key = ConnectionKey(serverSegment: packet)
        guard packet.ip.source == nodeAddress, let entry = entries[key] else { return false }
        packet.setSource(entry.serviceAddress)
        translatedFromKernel += 1
        noteSegment(key, flags: packet.tcp.flags, fromClient: false, now: now)
        return true
    }

    /// A reset from either side ends the connection for good (this segment is still translated).
    private mutating func noteSegment(_ key: ConnectionKey, flags: TCPFlags, fromClient: Bool, now: MonotonicTime) {
        if flags.contains(.rst) {
            entries[key] = nil
            forgotten += 1
            return
        }
        entries[key]?.lastSeen = now
        if flags.contains(.fin) {
            if fromClient { entries[key]?.finFromClient = true } else { entries[key]?.finFromKernel = true }
        }
    }

    /// Forgets connections closed for ``closingLingerMilliseconds``, and any with no segment
    /// for `idleMilliseconds`.
    public mutating func expire(now: MonotonicTime, idleMilliseconds: UInt64) {
        let before = entries.count
        entries = entries.filter { _, entry in
            let idle = now.milliseconds(since: entry.lastSeen)
            return idle < (entry.isClosing ? min(idleMilliseconds, Self.closingLingerMilliseconds) : idleMilliseconds)
        }
        forgotten += UInt64(before - entries.count)
    }
}
