import FTCPBridge
import FTCPReplication
import Foundation

/// What `ftcp-bridge status` prints: the running bridge's state as JSON.
public struct DaemonStatus: Codable, Sendable {
    public var role: String
    /// The process id of the bridge process (the one handling packets; its parent is the guardian).
    public var pid: Int32 = getpid()
    /// replicating, alone (primary after the secondary failed), checking-address,
    /// primary-silent-address-held or promoted (secondary after a takeover).
    public var state: String
    /// Why the state last changed.
    public var stateReason: String
    /// Seconds since the state last changed.
    public var stateSinceSeconds: Double
    public var uptimeSeconds: Double
    public var peer: PeerStatus
    public var counters: [String: UInt64]
    public var replication: [String: UInt64]
    /// The first ``listedConnectionLimit`` connections (by client address and port).
    public var connections: [ConnectionEntry]
    /// Connections tracked beyond those listed.
    public var connectionsNotListed: Int = 0
    /// Most connections a status lists: the loop that builds it also moves packets and
    /// heartbeats, and a full table (16,384 entries) would take it long enough to encode that
    /// the peer's fault detector would notice. The counts (`connectionsByKind`) cover all.
    public static let listedConnectionLimit = 500
    /// Open connections by protection: `protected` (a replica on the peer), `alone` (served by
    /// the primary alone: diverged, or opened while no secondary was heard), `inherited` (taken
    /// over at a takeover, unprotected until they close).
    public var connectionsByKind: [String: Int] = [:]

    /// What this bridge knows of the other one.
    public struct PeerStatus: Codable, Sendable {
        public var address: String
        /// unknown (never heard), alive or failed, as the fault detector sees it.
        public var state: String
        public var alive: Bool
        public var lastHeardMillisecondsAgo: UInt64?
        public var epoch: UInt64?
        /// The replication format version this node speaks.
        public var formatVersion: UInt8?
        /// The format version of the peer's last authentic datagram this node could not read:
        /// the nodes run incompatible ftcp versions and do not replicate (nil while none came).
        public var incompatibleFormatVersion: UInt8?
        /// What the peer's build reads beyond the first format's messages, from its heartbeats
        /// (``ReplicationCapabilities``): "digests", or "none" from a release before digests.
        public var capabilities: String? = nil
    }

    /// One protected connection.
    public struct ConnectionEntry: Codable, Sendable {
        public var client: String
        public var clientPort: UInt16
        public var serverPort: UInt16
        public var phase: String
        public var protected: Bool
        public var delta: UInt32?
        public var timestampDelta: UInt32?
        public var queuedPrimaryBytes: Int?
        public var queuedSecondaryBytes: Int?
        public var bytesSentToClient: UInt64?
        public var bytesFromClient: UInt64?
        public var bytesRelayedToPrimary: UInt64?
        public var retransmissionsForwarded: UInt64?
        public var divergences: UInt64?
        public var sequence: ConnectionStatus.Sequence?
        /// The service address the client connected to.
        public var service: String? = nil
        /// "outbound" for a connection the servers' applications opened (§7.2; `client` is then
        /// the remote end and `serverPort` the local port it knows), "inbound" for a client's.
        public var direction: String? = nil
        /// Runs whose bytes differed between the servers but were tolerated (`--divergence
        /// same-length`): the client got the primary's version and the connection stays protected.
        public var tolerated: UInt64? = nil
    }

    static func replicationCounters(_ statistics: ReplicationStatistics, sent: UInt64, sendErrors: UInt64) -> [String:
        UInt64]
    {
        [
            "sent": sent, "sendErrors": sendErrors,
            "accepted": statistics.accepted, "droppedMalformed": statistics.droppedMalformed,
            "droppedBadMAC": statistics.droppedBadMAC, "droppedWrongRole": statistics.droppedWrongRole,
            "droppedOldEpoch": statistics.droppedOldEpoch, "droppedReplay": statistics.droppedReplay,
            "droppedInvalidBody": statistics.droppedInvalidBody,
            "droppedIncompatibleVersion": statistics.droppedIncompatibleVersion,
            "peerEpochChanges": statistics.peerEpochChanges,
        ]
    }

    /// The status as pretty-printed JSON with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{\"error\": \"status could not be encoded\"}" }
        return String(decoding: data, as: UTF8.self)
    }
}
