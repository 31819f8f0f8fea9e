import FTCPWire

/// What a bridge core decided while handling one event: packets to send and
/// events to report. The shell carries them out in order.
public struct BridgeOutput: Sendable {
    /// Packets for the client, in the order they must leave.
    public private(set) var packetsToClient: [TCPPacketFields] = []
    /// Packets for the secondary's kernel (relayed over the replication channel).
    public private(set) var packetsToSecondary: [TCPPacketFields] = []
    public private(set) var events: [BridgeEvent] = []

    public init() {}

    mutating func send(_ packet: TCPPacketFields, connection: ConnectionKey) {
        packetsToClient.append(packet)
    }

    mutating func inject(_ packet: TCPPacketFields) {
        packetsToSecondary.append(packet)
    }

    mutating func event(_ event: BridgeEvent) {
        events.append(event)
    }

    public var isEmpty: Bool { packetsToClient.isEmpty && packetsToSecondary.isEmpty && events.isEmpty }
}
