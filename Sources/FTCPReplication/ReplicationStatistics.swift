/// How many datagrams a ``ReplicationOpener`` accepted, and how many it dropped for each reason,
/// for the daemon to report.
public struct ReplicationStatistics: Equatable, Hashable, Sendable {
    /// Datagrams that passed every check.
    public var accepted: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/malformed(_:)``: bad fixed header, before the MAC.
    public var droppedMalformed: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/badMAC``.
    public var droppedBadMAC: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/wrongRole(_:)``: reflections.
    public var droppedWrongRole: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/oldEpoch(received:current:)``.
    public var droppedOldEpoch: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/replay(epoch:counter:)``.
    public var droppedReplay: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/invalidBody(_:)``: authentic but not understood.
    public var droppedInvalidBody: UInt64 = 0
    /// Dropped with ``ReplicationDropReason/incompatibleVersion(peer:local:)``: authentic, from
    /// a peer whose ftcp speaks another format version.
    public var droppedIncompatibleVersion: UInt64 = 0
    /// How many times the peer's epoch advanced (the peer restarted); the first epoch seen counts.
    public var peerEpochChanges: UInt64 = 0

    public init() {}

    /// All dropped datagrams, whatever the reason.
    public var dropped: UInt64 {
        droppedMalformed &+ droppedBadMAC &+ droppedWrongRole &+ droppedOldEpoch &+ droppedReplay &+ droppedInvalidBody
            &+ droppedIncompatibleVersion
    }

    /// All datagrams offered to the opener.
    public var received: UInt64 { accepted &+ dropped }

    mutating func count(_ reason: ReplicationDropReason) {
        switch reason {
        case .malformed: droppedMalformed &+= 1
        case .badMAC: droppedBadMAC &+= 1
        case .wrongRole: droppedWrongRole &+= 1
        case .oldEpoch: droppedOldEpoch &+= 1
        case .replay: droppedReplay &+= 1
        case .invalidBody: droppedInvalidBody &+= 1
        case .incompatibleVersion: droppedIncompatibleVersion &+= 1
        }
    }
}
