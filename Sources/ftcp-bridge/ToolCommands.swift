import ArgumentParser
import FTCPBridge
import FTCPDaemon
import FTCPLinux
import FTCPReplication
import FTCPWire
import Foundation

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new replication key (32 random bytes) in the key file's format.",
        discussion:
            "Example: umask 077; ftcp-bridge keygen > /etc/ftcp/ftcp.key — then copy the same file to the other server."
    )

    func run() {
        print(ReplicationKey.generate().fileContents, terminator: "")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Print a running bridge's state: JSON (role, state, peer liveness, connections), a summary, or a health check.",
        discussion: """
            --check exits 0 when this node serves the service address (primary, alone or replicating), 1 when it \
            is a healthy secondary, 2 when it is failed or not running, and prints one line saying so and how many \
            connections are protected: for keepalived's MISC_CHECK (with misc_dynamic) or HAProxy's external check.
            """
    )

    @Option(help: "The bridge's control socket.")
    var control: String = "/run/ftcp/ftcp-primary.sock"

    @Flag(help: "Health check: exit 0 serving, 1 healthy secondary, 2 failed or not running; one line of explanation.")
    var check = false

    @Flag(help: "A summary for a terminal (state, peer, connections) instead of JSON.")
    var brief = false

    func validate() throws {
        guard !(check && brief) else { throw ValidationError("--check and --brief cannot be combined") }
    }

    func run() throws {
        let text: String
        do {
            text = try ControlSocket.query(path: control)
        } catch {
            if check {
                print(HealthCheck.check(nil).line)
                throw ExitCode(HealthCheck.Verdict.failed.rawValue)
            }
            throw ValidationError(
                "no bridge answers on \(control) (\(error)); is it running, and is --control the path it was started with?"
            )
        }
        guard check || brief else {
            print(text, terminator: "")
            return
        }
        let status = try? JSONDecoder().decode(DaemonStatus.self, from: Data(text.utf8))
        if check {
            let (verdict, line) = HealthCheck.check(status)
            print(line)
            if verdict != .serving { throw ExitCode(verdict.rawValue) }
            return
        }
        guard let status else {
            throw ValidationError("the bridge on \(control) answered something that is not a status")
        }
        print(HealthCheck.brief(status))
    }
}

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Install, remove or show a bridge's iptables rules by hand.",
        discussion:
            "The bridges install and remove their rules themselves; this is for inspection and for cleaning up after a crash.",
        subcommands: [Install.self, Remove.self, Show.self]
    )

    struct RuleOptions: ParsableArguments {
        @Option(help: "primary or secondary.")
        var role: String

        func parsedRole() throws -> FirewallPlan.Role {
            guard let role = FirewallPlan.Role(rawValue: role) else {
                throw ValidationError("--role must be primary or secondary")
            }
            return role
        }
    }

    struct PlanOptions: ParsableArguments {
        @Option(help: "This server's address (the service address on the primary).")
        var address: IPv4Address?
        @Option(help: "A service address (repeat for several); needed for the secondary's rules.")
        var serviceAddress: [IPv4Address] = []
        @Option(help: "Protected TCP ports, comma-separated.")
        var port: String = "9999"
        @Option(help: "NFQUEUE number for the local kernel's segments to clients.")
        var outboundQueue: UInt16 = 7401
        @Option(help: "NFQUEUE number for clients' segments to the service address.")
        var inboundQueue: UInt16 = 7402
        @Option(help: "Mark on the bridge's own packets.")
        var mark: UInt32 = 0x4654
        @Option(help: "Protected outbound connections: local ports and ADDRESS:PORT endpoints, comma-separated.")
        var protectOutbound: String?

        func plan(role: FirewallPlan.Role) throws -> FirewallPlan {
            var selections: [OutboundSelection] = []
            for part in (protectOutbound ?? "").split(separator: ",") {
                guard let selection = OutboundSelection(String(part)) else {
                    throw ValidationError("--protect-outbound: '\(part)' is neither a port nor ADDRESS:PORT")
                }
                selections.append(selection)
            }
            guard let address else { throw ValidationError("--address is needed to build the rules") }
            if role == .secondary && serviceAddress.isEmpty {
                throw ValidationError("the secondary's rules need --service-address (the primary's address)")
            }
            let ports = port.split(separator: ",").compactMap { UInt16($0) }
            guard !ports.isEmpty, ports.count == port.split(separator: ",").count else {
                throw ValidationError("--port takes TCP ports separated by commas")
            }
            // The primary's kernel's protected sockets are on the service address.
            let kernelAddress = role == .primary ? (serviceAddress.first ?? address) : address
            return FirewallPlan(
                role: role,
                ownAddress: kernelAddress,
                serviceAddresses: serviceAddress,
                ports: ports,
                outboundQueue: outboundQueue,
                inboundQueue: inboundQueue,
                bypassMark: mark,
                outboundLocalPorts: selections.compactMap { if case let .localPort(port) = $0 { port } else { nil } },
                outboundRemotes: selections.compactMap {
                    if case let .remote(address, port) = $0 { (address, port) } else { nil }
                }
            )
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install the rules (a bridge must then bind the queues, or protected traffic is dropped)."
        )
        @OptionGroup var rule: RuleOptions
        @OptionGroup var plan: PlanOptions
        func run() throws {
            try Firewall().install(plan.plan(role: rule.parsedRole()))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the role's chains and the jumps to them (harmless if absent)."
        )
        @OptionGroup var rule: RuleOptions
        func run() throws {
            let removed = Firewall().remove(role: try rule.parsedRole())
            print(removed == 0 ? "no ftcp rules were installed" : "removed ftcp \(rule.role) rules")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the exact rules: what is installed now, or with --address what install would run."
        )
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

struct SwitchoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchover",
        abstract: "Move the service address to the other node while both are healthy (maintenance, upgrades).",
        discussion: """
            Asks the bridge at --control (either node's) for a planned switchover and waits until the roles have \
            swapped. The primary sends what it has merged, releases the service address and tells the secondary over \
            the replication channel, which takes over at once (no failure to detect, no probes) and resends what its \
            clients have not acknowledged: every protected connection goes on without losing a byte. It is refused while connections without a \
            replica are open (inherited at an earlier takeover, or served alone), unless --force. The old primary \
            then serves as the secondary of the new one: connections opened from then on are protected again; those \
            open during the switchover are served by the new primary unprotected until they close (the old primary's \
            kernel holds them in the other sequence space). Needs --service-address on both bridges and a secondary \
            that replicates. Exit status 0 once the roles have swapped, 1 if the switchover was refused or did not \
            complete in time.
            """
    )

    @Option(help: "The control socket of either bridge.")
    var control: String = "/run/ftcp/ftcp-primary.sock"

    @Option(help: "Seconds to wait for the roles to swap.")
    var wait: Double = 5

    @Flag(
        help:
            "Switch over even if connections without a replica on the peer (inherited at a takeover, or served alone) are open: they are lost."
    )
    var force = false

    private func role() -> String? {
        guard let text = try? ControlSocket.query(path: control),
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        else { return nil }
        return object["role"] as? String
    }

    func run() throws {
        guard let before = role() else {
            throw ValidationError(
                "no bridge answers on \(control); is it running, and is --control the path it was started with?"
            )
        }
        let started = Date()
        let answer: String
        do {
            answer = try ControlSocket.query(path: control, request: force ? "switchover-force" : "switchover")
        } catch {
            throw ValidationError("the bridge on \(control) did not answer the switchover request: \(error)")
        }
        print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
        let outcome =
            (try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any])?["outcome"] as? String
        guard outcome == "started" || outcome == "requested" else { throw ExitCode(1) }
        while Date().timeIntervalSince(started) < wait {
            if let now = role(), now != before {
                let milliseconds = Int(Date().timeIntervalSince(started) * 1000)
                print("switched over: this node (\(control)) was \(before) and is now \(now), after \(milliseconds) ms")
                return
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        print("the roles had not swapped after \(wait) s: see the bridges' logs and `ftcp-bridge status`")
        throw ExitCode(1)
    }
}

struct LatencyReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency-report",
        abstract: "Show where one request's time goes, hop by hop, from the traces of --latency-trace-dir.",
        discussion: """
            Reads every latency-*.csv in DIR (both bridges' traces, copied into one directory if they ran on two \
            hosts: the timestamps line up only when both came from one host's clock, as in the lab) and the \
            client's trace if given (`ftcp-labtool round-trip --trace FILE`). The connection must carry one \
            request at a time; requests and answers are told apart from other segments by their payload length. \
            Prints a table of p50/p90/p99 per interval, then one `latency interval=KEY ...` line per interval.
            """
    )

    @Argument(help: "The directory the bridges wrote their traces into.")
    var directory: String

    @Option(help: "The client's trace (ftcp-labtool round-trip --trace).")
    var client: String?

    @Option(help: "The connection's client port (default: the client trace's, else the busiest).")
    var clientPort: UInt16?

    @Option(help: "Payload bytes of one request.")
    var requestBytes: Int = 64

    @Option(help: "Payload bytes of one answer.")
    var answerBytes: Int = 59

    func run() throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasPrefix("latency-") && $0.hasSuffix(".csv") }.sorted()
        } catch {
            throw ValidationError("cannot read \(directory): \(error.localizedDescription)")
        }
        var paths = names.map { "\(directory)/\($0)" }
        guard !paths.isEmpty else {
            throw ValidationError(
                "no latency-*.csv in \(directory): were the bridges started with --latency-trace-dir and stopped?"
            )
        }
        if let client { paths.append(client) }
        var records: [LatencyTrace.Record] = []
        for path in paths {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read \(path)")
            }
            records += LatencyBreakdown.records(fromText: text)
        }
        let breakdown = LatencyBreakdown(
            records: records,
            clientPort: clientPort,
            requestBytes: requestBytes,
            answerBytes: answerBytes
        )
        guard breakdown.exchanges > 0 else {
            throw ValidationError(
                "no request of \(requestBytes) bytes from client port \(breakdown.clientPort) in the primary's trace"
            )
        }
        print(breakdown.report)
    }
}
