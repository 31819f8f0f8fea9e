/// The client's view of its connections to one server port, rebuilt from a capture taken on
/// the client: when each opened and closed, and which server RSTs reached it while it was open.
///
/// A connection is closed once the client has sent its FIN and acknowledged the server's
/// (in either order). A RST after that finds no socket to harm (the client is in TIME_WAIT or
/// gone): the kernel of a server sends one, for instance, when a late duplicate ACK reaches a
/// socket that has just left LAST-ACK. A RST before it ends a live connection: that is the
/// failure the failover tests look for.
struct ClientConnections {
    struct Connection {
        var clientPort: UInt16
        var openedAt: Double
        var closedAt: Double?
        var serverFINEnd: UInt32?
        var clientSentFIN = false
        /// Server RSTs that arrived while the connection was open.
        var resetsWhileOpen: [IPv4Summary] = []
        /// Server RSTs that arrived after it closed (harmless, reported).
        var resetsAfterClose: [IPv4Summary] = []
    }

    private(set) var connections: [Connection] = []

    init(_ packets: [IPv4Summary], serverPort: UInt16) {
        var open: [UInt16: Int] = [:]
        for packet in packets where packet.transportProtocol == 6 {
            guard let flags = packet.tcpFlags, let source = packet.sourcePort, let destination = packet.destinationPort,
                let sequence = packet.tcpSequence
            else { continue }
            let fromClient = destination == serverPort
            let clientPort = fromClient ? source : destination
            if fromClient, flags & 0x02 != 0, flags & 0x10 == 0 {
                // A SYN opens a connection; a retransmitted one does not, a new one on a
                // port whose last connection closed does.
                if let index = open[clientPort], connections[index].closedAt == nil { continue }
                open[clientPort] = connections.count
                connections.append(Connection(clientPort: clientPort, openedAt: packet.timestamp))
                continue
            }
            guard let index = open[clientPort] else { continue }
            if fromClient {
                if flags & 0x01 != 0 { connections[index].clientSentFIN = true }
                if flags & 0x10 != 0, let finEnd = connections[index].serverFINEnd,
                    let acknowledgment = packet.tcpAcknowledgment,
                    connections[index].clientSentFIN, connections[index].closedAt == nil,
                    Int32(bitPattern: acknowledgment &- finEnd) >= 0
                {
                    connections[index].closedAt = packet.timestamp
                }
            } else {
                if flags & 0x01 != 0 {
                    connections[index].serverFINEnd = sequence &+ UInt32(packet.payloadLength) &+ 1
                }
                if flags & 0x04 != 0 {
                    if connections[index].closedAt == nil {
                        connections[index].resetsWhileOpen.append(packet)
                        connections[index].closedAt = packet.timestamp
                    } else {
                        connections[index].resetsAfterClose.append(packet)
                    }
                }
            }
        }
    }

    /// Server RSTs that ended a live connection.
    var resetsWhileOpen: [IPv4Summary] { connections.flatMap(\.resetsWhileOpen) }
    var resetsAfterClose: [IPv4Summary] { connections.flatMap(\.resetsAfterClose) }

    /// Connections opened before `start` and not closed before `end`: the ones a cut-off
    /// between the two times caught.
    func open(throughout start: Double, _ end: Double) -> [Connection] {
        connections.filter { $0.openedAt < start && ($0.closedAt ?? .infinity) > end }
    }
}
