import FTCPWire

/// What one server's kernel has said about a connection, in the secondary's
/// sequence space (the primary's segments are translated by Δ first).
struct ServerStream: Sendable {
    /// The server's initial sequence number, in its own space.
    var initialSequence: SequenceNumber?
    var handshake: HandshakeOptions?
    /// The latest acknowledgment this server sent (client space).
    var acknowledged: SequenceNumber?
    /// The latest window this server advertised, in bytes (scale applied).
    var windowBytes: UInt32 = 0
    /// The latest TSval (secondary clock) and TSecr this server sent.
    var timestamps: (value: UInt32, echoReply: UInt32)?
    /// SACK blocks of this server's latest segment.
    var sackBlocks: [SACKBlock] = []
    /// Bytes produced but not yet sent to the client.
    var pending: SequenceRangeStore
    /// Ranges the server produced, relayed as digests instead of bytes (the secondary's, with
    /// `--relay digests`), not yet compared with the other server's bytes.
    var claims = DigestClaims()
    /// Where this server's FIN sits, once it sent one.
    var finAt: SequenceNumber?
    var sentReset = false

    init(capacity: Int) {
        pending = SequenceRangeStore(base: SequenceNumber(0), capacity: capacity)
    }

    /// Right edge of the receive window this server advertised.
    var rightEdge: SequenceNumber? { acknowledged.map { $0 + windowBytes } }
}

/// What the client's segments have shown the primary bridge.
struct ClientStream: Sendable {
    var initialSequence: SequenceNumber
    var handshake: HandshakeOptions
    /// The latest acknowledgment the client sent (secondary space).
    var acknowledged: SequenceNumber?
    /// Where the client's FIN sits, once it sent one.
    var finAt: SequenceNumber?
    /// The end of the highest sequence the client has sent (its SND.NXT as far as the bridge saw).
    var sentUpTo: SequenceNumber?
}
