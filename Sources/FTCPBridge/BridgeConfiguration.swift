import FTCPWire

/// Settings both bridge cores share: who is who, which ports are protected,
/// and the bounds that keep a bridge's memory finite under load or attack.
public struct BridgeConfiguration: Sendable {
    /// The addresses clients connect to (the first is the pair's main one; without service
    /// addresses of its own, the primary's own address). Each connection keeps the one its
    /// client's SYN was sent to.
    public var serviceAddresses: [IPv4Address]
    /// The main service address.
    public var serviceAddress: IPv4Address { serviceAddresses[0] }
    /// The secondary's own address (its sockets are bound to it).
    public var secondaryAddress: IPv4Address
    /// Server ports whose connections are replicated.
    public var protectedPorts: Set<UInt16>
    /// Most connections tracked at once (tombstones included). A client SYN
    /// beyond it is dropped and counted, so the client retries later, rather
    /// than answered by an unprotected connection.
    public var maximumConnections: Int
    /// Most bytes held per server and connection waiting for the other
    /// server's copy. Bytes past it are refused and counted; their sender
    /// retransmits them, since the client never acknowledged them.
    public var maximumQueuedBytesPerServer: Int
    /// Most bytes the primary holds waiting for the other server's copy, over all connections.
    /// Past it, bytes that no copy of the other server waits for are refused and counted as
    /// past the per-connection bound (their kernel sends them again); bytes that pair with what
    /// the other server's copy already holds are always taken, since they leave the queues at
    /// once, so a full cap never stops a connection's merge.
    public var maximumQueuedBytesTotal: Int
    /// Most bytes the secondary keeps, over all connections, of segments its
    /// kernel sent that the client has not acknowledged, to resend them the
    /// moment it takes over. Past it the kernel's own retransmission timer
    /// restarts those flows, later.
    public var maximumRetainedBytes: Int
    /// How long a closed connection's sequence offsets are kept, so late
    /// segments (a retransmitted FIN, TIME_WAIT ACKs) are still translated.
    public var closedLingerMilliseconds: UInt64
    /// How long a handshake may wait for both servers' SYN-ACKs.
    public var handshakeTimeoutMilliseconds: UInt64
    /// How long an established connection may see no segment at all before
    /// its state is dropped (both kernels have then forgotten it too).
    public var idleTimeoutMilliseconds: UInt64
    /// What a difference between the two servers' bytes costs a connection.
    public var divergencePolicy: DivergencePolicy
    /// Connections the servers' applications open that are replicated (§7.2); the rest pass.
    public var outboundSelections: [OutboundSelection]
    /// How long one server's SYN of a selected outbound connection waits for the other's. The
    /// other kernel retransmits a SYN whose relay was lost after 1 s (RFC 6298's initial RTO), so
    /// 2 s covers one loss; past it the primary's connection goes out alone, unprotected, and
    /// the secondary's is refused (its application sees the connection refused at once).
    public var outboundPairingTimeoutMilliseconds: UInt64
    /// Whether the secondary relays the new bytes its kernel sends as digests instead of the
    /// bytes (`--relay digests`): the replication channel then carries about 1% of what the
    /// servers send, not all of it. Both nodes must run a version that knows digests.
    public var relaysDigests: Bool

    /// - Parameter additionalServiceAddresses: more addresses served beside `serviceAddress`.
    public init(
        serviceAddress: IPv4Address,
        additionalServiceAddresses: [IPv4Address] = [],
        secondaryAddress: IPv4Address,
        protectedPorts: Set<UInt16>,
        maximumConnections: Int = 16_384,
        maximumQueuedBytesPerServer: Int = 8 << 20,
        maximumQueuedBytesTotal: Int = 256 << 20,
        maximumRetainedBytes: Int = 64 << 20,
        closedLingerMilliseconds: UInt64 = 60_000,
        handshakeTimeoutMilliseconds: UInt64 = 75_000,
        idleTimeoutMilliseconds: UInt64 = 7_200_000,
        outboundSelections: [OutboundSelection] = [],
        outboundPairingTimeoutMilliseconds: UInt64 = 2_000,
        divergencePolicy: DivergencePolicy = .strict,
        relaysDigests: Bool = false
    ) {
        self.divergencePolicy = divergencePolicy
        self.relaysDigests = relaysDigests
        serviceAddresses = [serviceAddress] + additionalServiceAddresses.filter { $0 != serviceAddress }
        self.secondaryAddress = secondaryAddress
        self.protectedPorts = protectedPorts
        self.maximumConnections = maximumConnections
        self.maximumQueuedBytesPerServer = maximumQueuedBytesPerServer
        self.maximumQueuedBytesTotal = maximumQueuedBytesTotal
        self.maximumRetainedBytes = maximumRetainedBytes
        self.closedLingerMilliseconds = closedLingerMilliseconds
        self.handshakeTimeoutMilliseconds = handshakeTimeoutMilliseconds
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
        self.outboundSelections = outboundSelections
        self.outboundPairingTimeoutMilliseconds = outboundPairingTimeoutMilliseconds
    }

    /// Whether a connection a server's application opens from `localPort` to the remote
    /// endpoint is replicated. A protected port is never outbound: its connections are clients'.
    public func selectsOutbound(localPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16) -> Bool {
        !protectedPorts.contains(localPort)
            && outboundSelections.contains {
                $0.selects(localPort: localPort, remoteAddress: remoteAddress, remotePort: remotePort)
            }
    }

    /// The smallest MSS the bridges cut a client's segments to, whatever its SYN announced:
    /// RFC 9293's default MSS for IPv4 (every IPv4 host must take 576-byte datagrams, RFC 1122
    /// §3.3.2). A SYN announcing MSS 1 would otherwise make a bridge cut a connection's bytes
    /// into 1-byte segments, 40 bytes of headers each, on its one thread.
    public static let minimumClientSegmentSize = 536

    /// Raises a client SYN's MSS option to ``minimumClientSegmentSize`` in place (checksum
    /// updated); returns whether it did.
    static func raiseMaximumSegmentSize(of segment: TCPSegment) -> Bool {
        guard let announced = segment.maximumSegmentSize, Int(announced) < minimumClientSegmentSize else {
            return false
        }
        return segment.setMaximumSegmentSize(UInt16(minimumClientSegmentSize))
    }

    /// Whether `address` is one of the service addresses.
    public func serves(_ address: IPv4Address) -> Bool { serviceAddresses.contains(address) }
}
