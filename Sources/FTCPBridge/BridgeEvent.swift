import FTCPWire

/// Something a bridge core noticed that an operator may need to know. The
/// core only reports; the shell decides how to log it.
public enum BridgeEvent: Equatable, Sendable {
    /// Both servers answered a client's SYN; the connection is replicated.
    case connectionReplicated(ConnectionKey, delta: UInt32)
    /// The two servers produced different bytes (or a FIN against data) at
    /// the same position of the stream: the application is not deterministic.
    case divergence(ConnectionKey, at: SequenceNumber)
    /// A connection ended (both FINs acknowledged, or reset).
    case connectionClosed(ConnectionKey, reason: CloseReason)
    /// A connection's state was dropped after a timeout.
    case connectionExpired(ConnectionKey, phase: String)
    /// A client SYN was dropped because the connection table is full.
    case tableFull(ConnectionKey, limit: Int)
    /// A new connection to service address `refused` was passed unprotected: its client
    /// endpoint and port already have an open connection to `served`.
    case collidingServiceAddress(ConnectionKey, served: IPv4Address, refused: IPv4Address)
    /// One server's kernel reset or ended a connection the other's still serves (its
    /// application died or is not listening): the other serves it alone from now on.
    case replicaLost(ConnectionKey, role: ServerRole, cause: ReplicaLossCause)
    /// A server's kernel opened a selected outbound connection (§7.2) and the other's SYN did
    /// not come in time: the primary's goes on alone, unprotected; the secondary's is refused.
    case outboundUnpaired(ConnectionKey, role: ServerRole)
    /// A server's kernel answered a client's new SYN with an ACK of the connection it still
    /// holds on the same ports: passed to the client, whose reset ends that connection (RFC 5961
    /// §4), so its next SYN opens the new one, as with one server.
    case previousConnectionAnswered(ConnectionKey, role: ServerRole)

    /// One name per kind of event, for throttling the log.
    public var throttleKey: String {
        switch self {
        case .connectionReplicated: return "connectionReplicated"
        case .divergence: return "divergence"
        case .connectionClosed: return "connectionClosed"
        case .connectionExpired: return "connectionExpired"
        case .tableFull: return "tableFull"
        case .collidingServiceAddress: return "collidingServiceAddress"
        case .replicaLost: return "replicaLost"
        case .outboundUnpaired: return "outboundUnpaired"
        case .previousConnectionAnswered: return "previousConnectionAnswered"
        }
    }

    /// How a server's copy of a connection was seen to go.
    public enum ReplicaLossCause: String, Sendable {
        /// Its kernel sent a reset (to the SYN: nothing listens; later: the socket is gone).
        case reset
        /// Its kernel sent a FIN where the other server's has more bytes to send.
        case closedEarly = "closed early"
    }

    public enum CloseReason: String, Sendable {
        case finished, resetByClient = "reset by client", resetByServers = "reset by both servers"
    }
}

/// Which server's kernel a segment came from.
public enum ServerRole: String, Sendable {
    case primary, secondary
}
