/// A message that passed every check of ``ReplicationOpener``, with the authenticated envelope
/// it came in.
public struct ReceivedReplicationMessage: Equatable, Hashable, Sendable {
    /// The message itself.
    public var message: ReplicationMessage
    /// The sender's role (always the opener's peer role).
    public var senderRole: ReplicationRole
    /// The sender's epoch: it changes, upwards, when the peer restarts.
    public var epoch: UInt64
    /// The message's counter within ``epoch``.
    public var counter: UInt64

    public init(message: ReplicationMessage, senderRole: ReplicationRole, epoch: UInt64, counter: UInt64) {
        self.message = message
        self.senderRole = senderRole
        self.epoch = epoch
        self.counter = counter
    }
}
