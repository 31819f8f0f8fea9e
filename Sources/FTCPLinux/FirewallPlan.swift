import FTCPWire

/// The iptables rules a bridge needs, as argument lists: pure, so `rules
/// show` can print exactly what `rules install` runs, and tests can check
/// them without root.
///
/// Every rule lives in chains of the bridge's own (`FTCP-PRIMARY-OUT`, …) in
/// the `mangle` table, reached by one jump from the built-in chain, so
/// removing them never touches anyone else's rules. No rule has
/// `--queue-bypass`: a bridge that is not running means the protected
/// traffic stops (fail closed), never that a kernel talks to a client in
/// the wrong sequence space.
public struct FirewallPlan: Equatable, Sendable {
    /// Which bridge the rules are for.
    public enum Role: String, Sendable {
        case primary, secondary
    }

    /// One chain of the bridge's and the built-in chain that jumps to it.
    public struct Chain: Equatable, Sendable {
        public var name: String
        public var builtIn: String
        /// The rules inside the chain (arguments after `-A NAME`).
        public var rules: [[String]]
    }

    public static let table = "mangle"

    public var role: Role
    public var chains: [Chain]

    /// - Parameters:
    ///   - ownAddress: the address the local kernel's protected sockets use
    ///     (the service address on the primary, its own on the secondary).
    ///   - serviceAddresses: the addresses clients connect to (none: `ownAddress`). On the
    ///     primary, whose kernel holds them all, its sockets use each of them.
    ///   - outboundQueue: NFQUEUE number for the local kernel's segments to clients.
    ///   - inboundQueue: NFQUEUE number for clients' segments (primary only).
    ///   - bypassMark: the mark the bridge puts on packets it sends itself.
    ///   - inheritedAddress: primary only, on a node that took over and now serves as primary:
    ///     its own address, where the sockets of the connections it inherited are bound; their
    ///     segments go to the outbound queue too, to leave from the service address.
    ///   - replicationChannel: the peer's address and the channel's UDP port: datagrams to that
    ///     port from anyone else are dropped before they share the channel's socket (and its
    ///     turn budget) with the peer's heartbeats.
    ///   - outboundLocalPorts, outboundRemotes: connections the servers' applications open that are
    ///     replicated (Koch et al. §7.2), by local port or by remote endpoint: the local kernel's
    ///     segments of them go to the outbound queue, the remote end's segments to a service address
    ///     to the inbound queue. On the primary from any local address (its kernel may use its own
    ///     rather than a service address), on the secondary from its own.
    public init(
        role: Role,
        ownAddress: IPv4Address,
        serviceAddresses: [IPv4Address] = [],
        ports: [UInt16],
        outboundQueue: UInt16,
        inboundQueue: UInt16,
        bypassMark: UInt32,
        inheritedAddress: IPv4Address? = nil,
        replicationChannel: (peer: IPv4Address, port: UInt16)? = nil,
        outboundLocalPorts: [UInt16] = [],
        outboundRemotes: [(address: IPv4Address, port: UInt16)] = []
    ) {
        let serviceAddresses = serviceAddresses.isEmpty ? [ownAddress] : serviceAddresses
        self.role = role
        let portList = ports.sorted().map(String.init).joined(separator: ",")
        let mark = "0x" + String(bypassMark, radix: 16) + "/0x" + String(bypassMark, radix: 16)
        let prefix = role == .primary ? "FTCP-PRIMARY" : "FTCP-SECONDARY"
        let outbound = { (source: IPv4Address) in
            [
                "-p", "tcp", "-s", source.description, "-m", "multiport", "--sports", portList,
                "-m", "mark", "!", "--mark", mark,
                "-j", "NFQUEUE", "--queue-num", String(outboundQueue),
            ]
        }
        var sources = [ownAddress]
        if role == .primary {
            sources += serviceAddresses
            if let inheritedAddress { sources.append(inheritedAddress) }
        }
        var outRules: [[String]] = []
        for source in sources where !outRules.contains(outbound(source)) { outRules.append(outbound(source)) }
        let skipOwn = ["-m", "mark", "!", "--mark", mark, "-j", "NFQUEUE", "--queue-num", String(outboundQueue)]
        let opener = role == .primary ? [] : ["-s", ownAddress.description]
        if !outboundLocalPorts.isEmpty {
            let list = outboundLocalPorts.sorted().map(String.init).joined(separator: ",")
            outRules.append(["-p", "tcp"] + opener + ["-m", "multiport", "--sports", list] + skipOwn)
        }
        for remote in outboundRemotes {
            outRules.append(
                ["-p", "tcp"] + opener + ["-d", remote.address.description, "--dport", String(remote.port)] + skipOwn
            )
        }
        var chains = [Chain(name: "\(prefix)-OUT", builtIn: "OUTPUT", rules: outRules)]
        var inRules: [[String]] = []
        if let channel = replicationChannel {
            inRules.append([
                "-p", "udp", "--dport", String(channel.port), "!", "-s", channel.peer.description, "-j", "DROP",
            ])
        }
        // Clients' segments to the service address: on the primary, to move their ACKs into its
        // space; on the secondary, matched only once it holds the service address after a
        // takeover (before that, frames for the primary never reach its IP layer), to move
        // inherited connections to the secondary's own address before routing.
        let toInbound = ["-j", "NFQUEUE", "--queue-num", String(inboundQueue)]
        for serviceAddress in serviceAddresses {
            inRules.append(
                ["-p", "tcp", "-d", serviceAddress.description, "-m", "multiport", "--dports", portList] + toInbound
            )
            if !outboundLocalPorts.isEmpty {
                let list = outboundLocalPorts.sorted().map(String.init).joined(separator: ",")
                inRules.append(
                    ["-p", "tcp", "-d", serviceAddress.description, "-m", "multiport", "--dports", list] + toInbound
                )
            }
            for remote in outboundRemotes {
                inRules.append(
                    [
                        "-p", "tcp", "-s", remote.address.description, "-d", serviceAddress.description, "--sport",
                        String(remote.port),
                    ] + toInbound
                )
            }
        }
        chains.append(
            Chain(name: "\(prefix)-IN", builtIn: role == .primary ? "INPUT" : "PREROUTING", rules: inRules)
        )
        self.chains = chains
    }

    /// Chain names this role uses, for finding stale rules without a full plan.
    public static func chainNames(for role: Role) -> [String] {
        role == .primary ? ["FTCP-PRIMARY-OUT", "FTCP-PRIMARY-IN"] : ["FTCP-SECONDARY-OUT", "FTCP-SECONDARY-IN"]
    }

    /// The iptables invocations that install the plan, in order: chains and
    /// their rules first, the jumps last, so no packet meets a half-built chain.
    public var installCommands: [[String]] {
        var commands: [[String]] = []
        for chain in chains {
            commands.append(["-t", Self.table, "-N", chain.name])
            for rule in chain.rules { commands.append(["-t", Self.table, "-A", chain.name] + rule) }
        }
        for chain in chains {
            commands.append(["-t", Self.table, "-I", chain.builtIn, "1", "-j", chain.name])
        }
        return commands
    }

    /// The iptables invocations that remove the plan: jumps first, then chains.
    /// Each may fail harmlessly when the piece is already gone.
    public static func removeCommands(for role: Role) -> [[String]] {
        let names = chainNames(for: role)
        let builtIns = role == .primary ? ["OUTPUT", "INPUT"] : ["OUTPUT", "PREROUTING"]
        var commands: [[String]] = []
        for (name, builtIn) in zip(names, builtIns) {
            commands.append(["-t", table, "-D", builtIn, "-j", name])
        }
        for name in names {
            commands.append(["-t", table, "-F", name])
            commands.append(["-t", table, "-X", name])
        }
        return commands
    }

    /// The plan as shell lines a person can read or paste.
    public var scriptLines: [String] {
        installCommands.map { (["iptables"] + $0).joined(separator: " ") }
    }
}
