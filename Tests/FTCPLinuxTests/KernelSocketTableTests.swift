import FTCPWire
import Testing

@testable import FTCPLinux

@Suite("The kernel's socket table")
struct KernelSocketTableTests {
    static let table = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 6400500A:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0
           1: 6400500A:270F 0A00500A:A740 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0
           2: 6400500A:270F 0A00500A:A741 06 00000000:00000000 00:00000000 00000000     0        0 3 1 0
           3: 6400500A:270F 0A00500A:A742 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0
           4: 0100500A:270F 0A00500A:A743 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0
           5: 6400500A:0016 0A00500A:A744 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0
        """

    @Test(
        "established and close-wait connections on 10.80.0.100:9999 count; listening, TIME_WAIT, other addresses and ports do not"
    )
    func openOnServiceAddress() {
        let open = KernelSocketTable.parse(Self.table, localAddress: IPv4Address(10, 80, 0, 100), ports: [9999])
        #expect(
            open == [
                .init(remoteAddress: IPv4Address(10, 80, 0, 10), remotePort: 0xA740, localPort: 9999),
                .init(remoteAddress: IPv4Address(10, 80, 0, 10), remotePort: 0xA742, localPort: 9999),
            ]
        )
    }

    @Test("a malformed line is skipped")
    func malformed() {
        let open = KernelSocketTable.parse(
            "header\n 0: zz:1 0A00500A:A740 01\n",
            localAddress: IPv4Address(10, 80, 0, 100),
            ports: [9999]
        )
        #expect(open.isEmpty)
    }
}
