import FTCPWire

/// Identifies a protected connection: the client's endpoint and the service
/// port. The server address is implied (the primary's service address), so
/// the same key names the connection on both servers and in both directions.
public struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    public var clientAddress: IPv4Address
    public var clientPort: UInt16
    public var serverPort: UInt16

    public init(clientAddress: IPv4Address, clientPort: UInt16, serverPort: UInt16) {
        self.clientAddress = clientAddress
        self.clientPort = clientPort
        self.serverPort = serverPort
    }

    /// The connection of a segment a server sends its client.
    public init(serverSegment packet: TCPPacket) {
        self.init(
            clientAddress: packet.ip.destination,
            clientPort: packet.tcp.destinationPort,
            serverPort: packet.tcp.sourcePort
        )
    }

    /// The connection of a segment a client sends its server.
    public init(clientSegment packet: TCPPacket) {
        self.init(
            clientAddress: packet.ip.source,
            clientPort: packet.tcp.sourcePort,
            serverPort: packet.tcp.destinationPort
        )
    }

    public var description: String { "\(clientAddress):\(clientPort)->:\(serverPort)" }
}
