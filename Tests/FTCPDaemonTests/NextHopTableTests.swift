import FTCPLinux
import FTCPWire
import Testing

@testable import FTCPDaemon

@Suite("Next hops for segmentation offload")
struct NextHopTableTests {
    let router = MACAddress([0x02, 0, 0, 0, 0, 0x01])!
    let other = MACAddress([0x02, 0, 0, 0, 0, 0x02])!

    @Test("a client's hop is the last neighbour its translated segments came from")
    func learnsAndMoves() {
        var table = NextHopTable()
        let client = IPv4Address(10, 80, 0, 10)
        #expect(table.nextHop(to: client) == nil)
        table.learn(client: client, neighbour: router)
        #expect(table.nextHop(to: client) == router)
        table.learn(client: client, neighbour: other)
        #expect(table.nextHop(to: client) == other)
    }

    @Test("full, a new client starts the table over; a known one moving does not")
    func bounded() {
        var table = NextHopTable()
        for index in 0..<NextHopTable.capacity {
            table.learn(client: IPv4Address(UInt32(0x0A00_0000 + index)), neighbour: router)
        }
        table.learn(client: IPv4Address(0x0A00_0000), neighbour: other)
        #expect(table.hops.count == NextHopTable.capacity && table.restarts == 0)
        table.learn(client: IPv4Address(192, 0, 2, 1), neighbour: router)
        #expect(table.hops.count == 1 && table.restarts == 1)
    }
}
