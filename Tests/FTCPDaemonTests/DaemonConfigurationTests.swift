import FTCPDaemon
import FTCPReplication
import FTCPWire
import Testing

@Suite("Daemon configuration")
struct DaemonConfigurationTests {
    static let first = IPv4Address(10, 80, 0, 100)
    static let second = IPv4Address(10, 80, 0, 101)

    static func configuration(role: ReplicationRole, additional: [IPv4Address]) throws -> DaemonConfiguration {
        DaemonConfiguration(
            role: role,
            interface: "eth0",
            ownAddress: IPv4Address(10, 80, 0, 2),
            peerAddress: IPv4Address(10, 80, 0, 1),
            ports: [9999],
            key: try ReplicationKey(bytes: Array(0..<32)),
            controlPath: "/run/ftcp.sock",
            separateServiceAddress: first,
            additionalServiceAddresses: additional
        )
    }

    @Test("two service addresses: the secondary captures clients' segments to both, and the cores know both")
    func twoAddresses() throws {
        let secondary = try Self.configuration(role: .secondary, additional: [Self.second, Self.first])
        #expect(secondary.serviceAddresses == [Self.first, Self.second])
        #expect(
            secondary.captureFilter
                == "ip and tcp and not src host 10.80.0.2 and ((dst host (10.80.0.100 or 10.80.0.101) and (dst port 9999)) "
                + "or (src host (10.80.0.100 or 10.80.0.101) and (src port 9999)))"
        )
        #expect(secondary.bridgeConfiguration.serviceAddresses == [Self.first, Self.second])
        // The channel admits only the peer; then clients' segments to either address.
        #expect(
            secondary.firewallPlan.chains[1].rules[0] == [
                "-p", "udp", "--dport", "7400", "!", "-s", "10.80.0.1", "-j", "DROP",
            ]
        )
        #expect(secondary.firewallPlan.chains[1].rules.dropFirst().map { $0[3] } == ["10.80.0.100", "10.80.0.101"])
        // The node that takes over serves both from its kernel.
        let promoted = secondary.acting(as: .primary)
        #expect(promoted.kernelAddress == Self.first)
        #expect(
            promoted.firewallPlan(inheriting: true).chains[0].rules.map { $0[3] }
                == ["10.80.0.100", "10.80.0.101", "10.80.0.2"]
        )
    }
}
