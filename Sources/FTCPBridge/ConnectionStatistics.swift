/// Per-connection counters, reported by `status`.
public struct ConnectionStatistics: Equatable, Sendable {
    public var segmentsFromPrimary: UInt64 = 0
    public var segmentsFromSecondary: UInt64 = 0
    public var segmentsFromClient: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var pureAcknowledgments: UInt64 = 0
    public var duplicateAcknowledgments: UInt64 = 0
    public var retransmissionsForwarded: UInt64 = 0
    public var divergences: UInt64 = 0
    public var refusedQueueBytes: UInt64 = 0
    public var droppedBeforeHandshake: UInt64 = 0
    /// A kernel's ACKs of the connection it held on these ports before, answering the client's
    /// new SYN: passed to the client, whose reset ends that connection (RFC 5961 §4).
    public var previousConnectionsAnswered: UInt64 = 0
    public var droppedFromSecondaryAfterDivergence: UInt64 = 0
    public var droppedFromPrimaryAfterReplicaLost: UInt64 = 0
    /// Client resets whose sequence number was not one the client could rightly use: the
    /// connection's state was kept.
    public var unacceptableResets: UInt64 = 0
    /// Client ACKs beyond what was ever sent to it: not counted as its progress.
    public var acknowledgmentsOfUnsentData: UInt64 = 0
    /// Of `refusedQueueBytes`, those refused because the bridge-wide cap was reached.
    public var refusedOverTotalCap: UInt64 = 0
    /// Runs whose bytes differed between the servers but were tolerated (same length, few bytes;
    /// `--divergence same-length`), and how many bytes differed in all.
    public var toleratedDifferences: UInt64 = 0
    public var toleratedBytes: UInt64 = 0
    /// The secondary's digested segments (`--relay digests`) whose bytes matched the primary's
    /// and went out; those of bytes already sent (retransmissions); and those not merged (before
    /// or after replicating, sent in part already, overlapping a claim held, over the limit).
    public var digestsMerged: UInt64 = 0
    public var digestsOfSentBytes: UInt64 = 0
    public var digestsNotMerged: UInt64 = 0
}
