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
    /// One server reset a connection the other still serves.
    case oneSidedReset(ConnectionKey, by: ServerRole)

    public enum CloseReason: String, Sendable {
        case finished, resetByClient = "reset by client", resetByServers = "reset by both servers"
    }
}

/// Which server's kernel a segment came from.
public enum ServerRole: String, Sendable {
    case primary, secondary
}
