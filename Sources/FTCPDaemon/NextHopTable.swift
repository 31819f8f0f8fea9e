import FTCPLinux
import FTCPWire

/// Where the primary hands the super-segments it builds for its kernel to cut up (segmentation
/// offload through a packet socket): the link-layer address each client's segments came from.
///
/// Pure. Learnt only from segments the bridge translated for a connection it tracks (past the
/// handshake): a forged frame from a neighbour that claims a client's address cannot redirect
/// that client's traffic through itself, and a flood of SYNs from random sources does not
/// fill the table. Until a client's hop is known its segments go out through the kernel's
/// routing, in pieces.
struct NextHopTable {
    /// Most clients remembered; once full the table starts over (the hops are learnt again
    /// from the next segment of each client, which the connection's traffic brings at once).
    static let capacity = 65_536

    private(set) var hops: [IPv4Address: MACAddress] = [:]
    private(set) var restarts: UInt64 = 0

    /// A client's segment arrived from `neighbour` and was translated for a tracked connection.
    mutating func learn(client: IPv4Address, neighbour: MACAddress) {
        if hops[client] == neighbour { return }
        if hops[client] == nil && hops.count >= Self.capacity {
            hops.removeAll(keepingCapacity: true)
            restarts += 1
        }
        hops[client] = neighbour
    }

    func nextHop(to client: IPv4Address) -> MACAddress? { hops[client] }
}
