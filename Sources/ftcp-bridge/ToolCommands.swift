import ArgumentParser
import FTCPLinux
import FTCPReplication
import FTCPWire

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new replication key (32 random bytes) in the key file's format.",
        discussion: "Example: umask 077; ftcp-bridge keygen > /etc/ftcp/ftcp.key — then copy the same file to the other server."
    )

    func run() {
        print(ReplicationKey.generate().fileContents, terminator: "")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print a running bridge's state as JSON (role, state, peer liveness, connections)."
    )

    @Option(help: "The bridge's control socket.")
    var control: String = "/run/ftcp/ftcp-primary.sock"

    func run() throws {
        do {
            print(try ControlSocket.query(path: control), terminator: "")
        } catch {
            throw ValidationError("no bridge answers on \(control) (\(error)); is it running, and is --control the path it was started with?")
        }
    }
}

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Install, remove or show a bridge's iptables rules by hand.",
        discussion: "The bridges install and remove their rules themselves; this is for inspection and for cleaning up after a crash.",
        subcommands: [Install.self, Remove.self, Show.self]
    )

    struct RuleOptions: ParsableArguments {
        @Option(help: "primary or secondary.")
        var role: String

        func parsedRole() throws -> FirewallPlan.Role {
            guard let role = FirewallPlan.Role(rawValue: role) else { throw ValidationError("--role must be primary or secondary") }
            return role
        }
    }

    struct PlanOptions: ParsableArguments {
        @Option(help: "This server's address (the service address on the primary).")
        var address: IPv4Address?
        @Option(help: "The service address (the primary's); needed for the secondary's rules.")
        var serviceAddress: IPv4Address?
        @Option(help: "Protected TCP ports, comma-separated.")
        var port: String = "9999"
        @Option(help: "NFQUEUE number for the local kernel's segments to clients.")
        var outboundQueue: UInt16 = 7401
        @Option(help: "NFQUEUE number for clients' segments to the service address.")
        var inboundQueue: UInt16 = 7402
        @Option(help: "Mark on the bridge's own packets.")
        var mark: UInt32 = 0x4654

        func plan(role: FirewallPlan.Role) throws -> FirewallPlan {
            guard let address else { throw ValidationError("--address is needed to build the rules") }
            if role == .secondary && serviceAddress == nil {
                throw ValidationError("the secondary's rules need --service-address (the primary's address)")
            }
            let ports = port.split(separator: ",").compactMap { UInt16($0) }
            guard !ports.isEmpty, ports.count == port.split(separator: ",").count else {
                throw ValidationError("--port takes TCP ports separated by commas")
            }
            // The primary's kernel's protected sockets are on the service address.
            let kernelAddress = role == .primary ? (serviceAddress ?? address) : address
            return FirewallPlan(role: role, ownAddress: kernelAddress, serviceAddress: serviceAddress, ports: ports,
                                outboundQueue: outboundQueue, inboundQueue: inboundQueue, bypassMark: mark)
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Install the rules (a bridge must then bind the queues, or protected traffic is dropped).")
        @OptionGroup var rule: RuleOptions
        @OptionGroup var plan: PlanOptions
        func run() throws {
            try Firewall().install(plan.plan(role: rule.parsedRole()))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the role's chains and the jumps to them (harmless if absent).")
        @OptionGroup var rule: RuleOptions
        func run() throws {
            let removed = Firewall().remove(role: try rule.parsedRole())
            print(removed == 0 ? "no ftcp rules were installed" : "removed ftcp \(rule.role) rules")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the exact rules: what is installed now, or with --address what install would run.")
        @OptionGroup var rule: RuleOptions
        @OptionGroup var plan: PlanOptions
        func run() throws {
            let role = try rule.parsedRole()
            if plan.address != nil {
                try plan.plan(role: role).scriptLines.forEach { print($0) }
            } else {
                let lines = Firewall().listing(for: role)
                if lines.isEmpty { print("# no ftcp \(role.rawValue) rules installed") }
                lines.forEach { print("iptables -t mangle \($0)") }
            }
        }
    }
}
