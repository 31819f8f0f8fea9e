import ArgumentParser
import FTCPDaemon
import FTCPLinux
import FTCPReplication
import Foundation
import Glibc
import Logging

/// Makes the directory of the control socket, as /run/ftcp usually is not there after boot.
func prepareControlDirectory(_ path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    guard !directory.isEmpty else { return }
    do {
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
    } catch {
        throw ValidationError("cannot create \(directory) for the control socket: \(error.localizedDescription)")
    }
}

/// Runs a bridge role as two processes: the one started by the operator becomes the guardian
/// and starts this same command again as the bridge process (marked by the guardian's pipe in
/// its environment), which runs `body`. With `--no-guardian`, `body` runs in this process.
/// `--metrics`: the registry and its HTTP endpoint, in the bridge process (restarted with it).
/// An endpoint that cannot listen (the port taken, the address not on this host) costs the
/// metrics, never the protection: the bridge runs without them and says so.
func startMetrics(_ options: BridgeOptions, logger: Logger) throws -> (BridgeMetrics, MetricsEndpoint)? {
    guard let (address, port) = try options.metricsEndpoint() else { return nil }
    let metrics = BridgeMetrics()
    do {
        let endpoint = try MetricsEndpoint(address: address, port: port) { metrics.exposition() }
        logger.info("serving metrics", metadata: ["url": "http://\(address):\(endpoint.port)/metrics"])
        return (metrics, endpoint)
    } catch {
        logger.error(
            "metrics not served (\(error)); the bridge runs without them. Free the port or fix --metrics, then restart"
        )
        return nil
    }
}

/// SIGHUP's reading of the configuration: the file and the command line expanded again as at
/// the start (``ConfigLoader/expand(_:)``), checked as at the start, and compared with what the
/// node started with.
func reloadFromConfiguration() -> Guardian.Reload? {
    let commandLine = Array(CommandLine.arguments.dropFirst())
    guard let initial = try? ConfigLoader.expand(commandLine) else { return nil }
    let guardianKeys: Set<String> = ["hang-timeout", "notify"]
    return {
        let fresh = try ConfigLoader.expand(commandLine)
        let options = try BridgeOptions.parse(Array(fresh.dropFirst()))
        let before = ConfigLoader.settings(initial)
        let after = ConfigLoader.settings(fresh)
        let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }
        return (
            Guardian.ReloadableSettings(hangTimeoutMilliseconds: options.hangTimeout, notifyProgram: options.notify),
            changed.subtracting(guardianKeys).sorted()
        )
    }
}

/// Runs a node (guarded), with its metrics endpoint if asked for; exits with the node's status.
func runNode(_ options: BridgeOptions, configuration: DaemonConfiguration, role: String) throws {
    try runGuarded(options, configuration: configuration, role: role) { logger, guardian in
        let metrics = try startMetrics(options, logger: logger)
        defer { metrics?.1.close() }
        let status = try NodeRunner.run(
            configuration: configuration,
            logger: logger,
            guardian: guardian,
            metrics: metrics?.0
        )
        if status != 0 { throw ExitCode(status) }
    }
}

func runGuarded(
    _ options: BridgeOptions,
    configuration: DaemonConfiguration,
    role: String,
    _ body: (Logger, GuardianLink?) throws -> Void
) throws {
    let link = GuardianLink.fromEnvironment()
    if link == nil && !options.noGuardian {
        let logger = options.makeLogger(role: "\(role).guardian")
        let status: Int32
        do {
            status = try Guardian(
                configuration: configuration,
                logger: logger,
                hangTimeoutMilliseconds: options.hangTimeout,
                notifyProgram: options.notify,
                reload: reloadFromConfiguration()
            ).run()
        } catch {
            logger.critical("the guardian could not start the bridge process: \(error)")
            throw ExitCode(1)
        }
        if status != 0 { throw ExitCode(status) }
        return
    }
    // The bridge process: SIGHUP (a reload signal to keepalived's scripts, a closed terminal)
    // must not end it.
    signal(SIGHUP, SIG_IGN)
    let logger = options.makeLogger(role: role)
    do {
        try body(logger, link)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        logger.critical("\(role) failed: \(error)")
        throw ExitCode(1)
    }
}

struct PrimaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "primary",
        abstract: "Run the primary bridge on the server that owns the service address.",
        discussion: """
            Installs its own iptables chains (mangle FTCP-PRIMARY-OUT/-IN → NFQUEUE), removes them on SIGINT/SIGTERM, \
            and refuses to start while chains from a crashed run remain (`ftcp-bridge rules remove --role primary` clears \
            them). While it is not running, protected traffic is dropped rather than answered in the wrong sequence space.
            Example (the namespace lab): ftcp-bridge primary --interface eth0 --address 10.80.0.1 --peer 10.80.0.2 \
            --port 9999 --key-file /etc/ftcp/ftcp.key
            """
    )

    @OptionGroup var options: BridgeOptions

    func run() throws {
        let configuration = try options.configuration(role: .primary)
        try prepareControlDirectory(configuration.controlPath)
        try runNode(options, configuration: configuration, role: "primary")
    }
}

struct SecondaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secondary",
        abstract: "Run the secondary bridge on the backup server.",
        discussion: """
            Captures clients' segments to the primary on --interface in promiscuous mode and feeds them to the local \
            kernel readdressed to --address; diverts the local kernel's segments to clients to the primary over the \
            replication channel (mangle chain FTCP-SECONDARY-OUT → NFQUEUE). The secondary must see the clients' frames \
            to the primary (a shared segment, a hub, or a switch port mirror).
            Example (the namespace lab): ftcp-bridge secondary --interface eth0 --address 10.80.0.2 --peer 10.80.0.1 \
            --port 9999 --key-file /etc/ftcp/ftcp.key
            """
    )

    @OptionGroup var options: BridgeOptions

    func run() throws {
        let configuration = try options.configuration(role: .secondary)
        try prepareControlDirectory(configuration.controlPath)
        try runNode(options, configuration: configuration, role: "secondary")
    }
}
