import FTCPLinux
import FTCPWire
import Testing

@Suite("Firewall plan")
struct FirewallPlanTests {
    static let first = IPv4Address(10, 80, 0, 100)
    static let second = IPv4Address(10, 80, 0, 101)
    static let own = IPv4Address(10, 80, 0, 1)

    @Test("a primary with two service addresses queues its kernel's segments from each, and clients' to each")
    func primaryWithTwoAddresses() {
        let plan = FirewallPlan(
            role: .primary,
            ownAddress: Self.first,
            serviceAddresses: [Self.first, Self.second],
            ports: [9999, 21],
            outboundQueue: 7401,
            inboundQueue: 7402,
            bypassMark: 0x4654,
            inheritedAddress: Self.own
        )
        #expect(
            plan.scriptLines == [
                "iptables -t mangle -N FTCP-PRIMARY-OUT",
                "iptables -t mangle -A FTCP-PRIMARY-OUT -p tcp -s 10.80.0.100 -m multiport --sports 21,9999 -m mark ! --mark 0x4654/0x4654 -j NFQUEUE --queue-num 7401",
                "iptables -t mangle -A FTCP-PRIMARY-OUT -p tcp -s 10.80.0.101 -m multiport --sports 21,9999 -m mark ! --mark 0x4654/0x4654 -j NFQUEUE --queue-num 7401",
                "iptables -t mangle -A FTCP-PRIMARY-OUT -p tcp -s 10.80.0.1 -m multiport --sports 21,9999 -m mark ! --mark 0x4654/0x4654 -j NFQUEUE --queue-num 7401",
                "iptables -t mangle -N FTCP-PRIMARY-IN",
                "iptables -t mangle -A FTCP-PRIMARY-IN -p tcp -d 10.80.0.100 -m multiport --dports 21,9999 -j NFQUEUE --queue-num 7402",
                "iptables -t mangle -A FTCP-PRIMARY-IN -p tcp -d 10.80.0.101 -m multiport --dports 21,9999 -j NFQUEUE --queue-num 7402",
                "iptables -t mangle -I OUTPUT 1 -j FTCP-PRIMARY-OUT",
                "iptables -t mangle -I INPUT 1 -j FTCP-PRIMARY-IN",
            ]
        )
    }

    @Test("a secondary queues only its own address's segments; clients' to every service address after a takeover")
    func secondaryWithTwoAddresses() {
        let plan = FirewallPlan(
            role: .secondary,
            ownAddress: Self.own,
            serviceAddresses: [Self.first, Self.second],
            ports: [9999],
            outboundQueue: 7401,
            inboundQueue: 7402,
            bypassMark: 0x4654
        )
        #expect(plan.chains.map(\.builtIn) == ["OUTPUT", "PREROUTING"])
        #expect(plan.chains[0].rules.count == 1 && plan.chains[0].rules[0][3] == "10.80.0.1")
        #expect(plan.chains[1].rules.map { $0[3] } == ["10.80.0.100", "10.80.0.101"])
    }

    @Test("the replication channel's port admits only the peer, first in the chain of incoming segments")
    func channelOnlyFromThePeer() {
        let plan = FirewallPlan(
            role: .primary,
            ownAddress: Self.own,
            ports: [9999],
            outboundQueue: 1,
            inboundQueue: 2,
            bypassMark: 1,
            replicationChannel: (peer: IPv4Address(10, 80, 0, 2), port: 7400)
        )
        #expect(
            plan.scriptLines.contains(
                "iptables -t mangle -A FTCP-PRIMARY-IN -p udp --dport 7400 ! -s 10.80.0.2 -j DROP"
            )
        )
        #expect(plan.chains[1].rules.count == 2 && plan.chains[1].rules[0].contains("udp"))
    }

    @Test("without service addresses of its own, the primary's own address is the service address")
    func olderForm() {
        let plan = FirewallPlan(
            role: .primary,
            ownAddress: Self.own,
            ports: [9999],
            outboundQueue: 1,
            inboundQueue: 2,
            bypassMark: 1
        )
        #expect(plan.chains.map { $0.rules.map { $0[3] } } == [["10.80.0.1"], ["10.80.0.1"]])
    }
}

@Suite("NFQUEUE statistics")
struct NetfilterQueueStatisticsTests {
    @Test("the kernel's lines are read by column; others are skipped")
    func parse() {
        let text = """
             7401  31337     5 2 65531     2     7 123456  1
             7402  31338     0 2 65531     0     0    99  1
            garbage
            """
        let parsed = NetfilterQueueStatistics.parse(text)
        #expect(parsed.count == 2)
        #expect(parsed[7401] == NetfilterQueueStatistics(queue: 7401, waiting: 5, queueDropped: 2, userDropped: 7))
        #expect(parsed[7402]?.waiting == 0)
    }

    @Test(
        "outbound connections (§7.2): the kernel's segments by local port or remote end, the remote end's to each service address"
    )
    func outbound() {
        let primary = FirewallPlan(
            role: .primary,
            ownAddress: IPv4Address(10, 80, 0, 100),
            serviceAddresses: [IPv4Address(10, 80, 0, 100)],
            ports: [21],
            outboundQueue: 7401,
            inboundQueue: 7402,
            bypassMark: 0x4654,
            outboundLocalPorts: [20],
            outboundRemotes: [(IPv4Address(10, 80, 0, 50), 5432)]
        )
        #expect(
            primary.scriptLines.filter { $0.contains("20") || $0.contains("5432") } == [
                "iptables -t mangle -A FTCP-PRIMARY-OUT -p tcp -m multiport --sports 20 -m mark ! --mark 0x4654/0x4654 -j NFQUEUE --queue-num 7401",
                "iptables -t mangle -A FTCP-PRIMARY-OUT -p tcp -d 10.80.0.50 --dport 5432 -m mark ! --mark 0x4654/0x4654 -j NFQUEUE --queue-num 7401",
                "iptables -t mangle -A FTCP-PRIMARY-IN -p tcp -d 10.80.0.100 -m multiport --dports 20 -j NFQUEUE --queue-num 7402",
                "iptables -t mangle -A FTCP-PRIMARY-IN -p tcp -s 10.80.0.50 -d 10.80.0.100 --sport 5432 -j NFQUEUE --queue-num 7402",
            ]
        )
        let secondary = FirewallPlan(
            role: .secondary,
            ownAddress: IPv4Address(10, 80, 0, 1),
            serviceAddresses: [IPv4Address(10, 80, 0, 100)],
            ports: [21],
            outboundQueue: 7401,
            inboundQueue: 7402,
            bypassMark: 0x4654,
            outboundLocalPorts: [20],
            outboundRemotes: [(IPv4Address(10, 80, 0, 50), 5432)]
        )
        // Only the secondary's own sockets: it never sends from a service address before a takeover.
        #expect(secondary.chains[0].rules.allSatisfy { $0[2] == "-s" && $0[3] == "10.80.0.1" })
        #expect(secondary.chains[0].rules.count == 3)
        #expect(secondary.chains[1].rules.count == 3)
    }
}
