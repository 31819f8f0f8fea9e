import FTCPWire

/// What the bridge has told the client about the client's own stream: the latest acknowledgment
/// and the right edge of the receive window. The edge never moves left (RFC 9293 discourages
/// shrinking a window; design notes, "Window scale"), whichever server's window it came from.
struct ClientAdvertisement: Equatable, Sendable {
    /// The acknowledgment of the latest segment to the client that carried one.
    var acknowledgment: SequenceNumber?
    /// The furthest right edge (acknowledgment + window, in bytes) offered to the client.
    var edge: SequenceNumber?
    /// The newest TSval the client was sent. A later segment never carries an older one: the
    /// client's PAWS check (RFC 7323 §5.3) drops a segment whose TSval is older than the one it
    /// last took, and a server's late segment (a relay resent after a loss) carries an old one.
    var timestampValue: UInt32?

    /// `value`, or the newest TSval already sent if that is later; and the advertisement that
    /// remembers it.
    func stamping(_ value: UInt32) -> (value: UInt32, advertised: ClientAdvertisement) {
        var next = self
        let newest =
            timestampValue.map { SequenceNumber.later(SequenceNumber(value), SequenceNumber($0)).rawValue } ?? value
        next.timestampValue = newest
        return (newest, next)
    }

    /// The advertisement with `edge` offered too: the later of the two edges.
    func widened(to edge: SequenceNumber) -> ClientAdvertisement {
        var next = self
        next.edge = self.edge.map { SequenceNumber.later($0, edge) } ?? edge
        return next
    }

    /// The window field that offers this advertisement's edge to a segment acknowledging `ack`,
    /// in units of `shift` (0 if the edge is not beyond the acknowledgment).
    func windowField(acknowledging ack: SequenceNumber, shift: UInt8) -> UInt16 {
        guard let edge, ack < edge else { return 0 }
        let bytes = UInt32(ack.distance(to: edge))
        return UInt16(min(UInt32(UInt16.max), bytes >> UInt32(shift)))
    }
}
