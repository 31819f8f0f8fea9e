import ArgumentParser
import FTCPBridge
import FTCPDaemon
import FTCPLinux
import FTCPReplication
import FTCPWire
import Foundation
import Logging

extension IPv4Address: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Options both bridge roles take.
struct BridgeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Config file: one `key = value` per line, the keys being these long options without dashes (default /etc/ftcp/ftcp.conf, when it exists).",
            discussion:
                "Options on the command line override the file. `ftcp-bridge check-config` validates it without starting."
        )
    )
    var config: String?

    @Option(help: "Interface on the segment shared with the clients and the other server.")
    var interface: String = "eth0"

    @Option(
        help:
            "This server's own IPv4 address (without --service-address, on the primary also the address clients connect to)."
    )
    var address: IPv4Address

    @Option(
        help: ArgumentHelp(
            "An address clients connect to, when it is neither server's own (the same on both servers).",
            discussion: """
                The node serving as primary adds it to --interface (prefix --service-prefix-length) and announces it; \
                the secondary never holds it until it takes over. Roles then follow the address, not the command line: \
                a node that finds its peer answering for it starts as the secondary, whatever its role argument; a \
                node that took it over goes on as primary and takes its repaired peer back as the secondary (new \
                connections are protected again from then on; the ones it inherited are served unprotected until they \
                close). Without it the service address is the primary's own --address and roles never swap.

                Give it again for more addresses (the same list, in the same order, on both servers): they move \
                together; the first is the one probed for and watched. The secondary's kernel knows every protected \
                connection under its own address, so a client that uses the same address and port towards two \
                service addresses at once gets the second connection served by the primary alone, unprotected \
                (counted as passedCollidingAddress).
                """
        )
    )
    var serviceAddress: [IPv4Address] = []

    @Option(help: "The other server's IPv4 address.")
    var peer: IPv4Address

    @Option(help: "Protected TCP server ports, comma-separated (the same list on both servers).")
    var port: String = "9999"

    @Option(
        help: ArgumentHelp(
            "Connections the servers' applications open that are protected: local ports and remote endpoints, comma-separated (the same list on both servers).",
            discussion: """
                A port (20) selects the connections that leave from that local port: active FTP's data connections, \
                which vsftpd opens from port 20 (connect_from_port_20). ADDRESS:PORT (10.0.0.5:5432) selects every \
                connection to that remote endpoint, from any local port: a back-end the application talks to. Both \
                servers' applications must open the same connections in the same order; their two SYNs are paired by \
                remote endpoint and order (within 2 s) and become one connection from the main service address, \
                protected and failed over like a client's. A SYN whose partner does not come goes out unprotected \
                from the primary, or is refused on the secondary. Other outbound connections pass as before.
                """
        )
    )
    var protectOutbound: String?

    @Option(
        help: ArgumentHelp(
            "What a difference between the two servers' bytes costs a connection: strict (default), same-length, or PORT=same-length,… (the same on both servers).",
            discussion: """
                strict: at the first byte that differs the connection loses its protection (the primary serves it \
                alone). same-length: where the bytes differ but not their length, by at most 64 bytes at a time and \
                4,096 over the connection (an HTTP Date header straddling a second, a process id, a cancel key), \
                the client gets the primary's version and the connection stays protected; `status` counts them as \
                `tolerated`. After a takeover the client holds the primary's version of what it had received and \
                gets the secondary's of the rest: harmless for a timestamp, not for a token the server later checks \
                on the same connection. PORT=… sets it per local port; ports not named stay strict.
                """
        )
    )
    var divergence: String = "strict"

    @Option(
        help: ArgumentHelp(
            "What the secondary relays of the bytes its kernel sends: digests (the default) or bytes (all of them).",
            discussion: """
                bytes: every byte the servers send to clients crosses the replication channel too (the channel \
                carries as much as the clients receive). digests: the secondary relays the headers of its kernel's \
                new bytes and a 16-byte SHA-256 digest of each piece of about one segment, and the primary sends \
                its own bytes once they match (the channel carries about 1% of what clients receive); \
                retransmissions, ports with --divergence same-length, and connections whose primary application \
                failed are relayed whole. Digests go only to a primary whose heartbeats say it reads them; a \
                primary of an older release gets bytes. Set it alike on both servers: roles swap at a failover.
                """
        )
    )
    var relay: String = "digests"

    @Option(help: "Replication key file (mode 0600; make one with `ftcp-bridge keygen`). The same key on both servers.")
    var keyFile: String = "/etc/ftcp/ftcp.key"

    @Option(help: "Control socket for `ftcp-bridge status` (default /run/ftcp/ftcp-ROLE.sock).")
    var control: String?

    @Option(help: "UDP port of the replication channel between the two bridges.")
    var replicationPort: UInt16 = 7400

    @Option(help: "NFQUEUE number for the local kernel's segments to clients.")
    var outboundQueue: UInt16 = 7401

    @Option(help: "NFQUEUE number for clients' segments to the primary.")
    var inboundQueue: UInt16 = 7402

    @Option(help: "Packet mark on the bridge's own packets (must not be used by other rules).")
    var mark: UInt32 = 0x4654

    @Option(help: "Most connections tracked at once; a client SYN beyond it is dropped (the client retries).")
    var maxConnections: Int = 16_384

    @Option(help: "Most bytes held per server and connection waiting for the other server's copy.")
    var maxQueuedBytes: Int = 8 << 20

    @Option(help: "Heartbeat interval on the replication channel, in milliseconds.")
    var heartbeatInterval: UInt64 = 10

    @Option(
        help: ArgumentHelp(
            "Heartbeats missed in a row before the other bridge counts as failed (detection time = interval × this).",
            discussion: """
                Default: 8 on the primary (its verdict ends protection for every connection, so it waits longer), \
                2 on the secondary (its verdict only starts ARP probes; a primary whose host answers them is never taken over).
                """
        )
    )
    var missedHeartbeats: UInt64?

    @Option(
        help: "ARP probes for the service address the secondary sends, unanswered, before it takes the address over."
    )
    var takeoverProbes: Int = 3

    @Option(help: "Milliseconds between takeover probes, and after the last one for an answer to arrive.")
    var probeInterval: UInt64 = 5

    @Flag(
        help: ArgumentHelp(
            "Primary: when stopped (SIGINT/SIGTERM) with connections open, release the service address so the secondary takes them over.",
            discussion: """
                Without it a primary stopped with connections open keeps its rules (its kernel must not answer those \
                clients in its own sequence space) and its address, and the connections stall until the address is removed.
                """
        )
    )
    var handOverOnStop = false

    @Flag(
        help: ArgumentHelp(
            "Handle one segment at a time: no GSO super-segments from the kernel's queue, none sent by the primary, no coalesced injection on the secondary.",
            discussion: """
                By default both bridges take their kernel's segments to clients from NFQUEUE as GSO super-segments of up \
                to 64 KiB (cut again to fit the client's MSS or a replication datagram before anything leaves); \
                on the primary a run of full-size segments for one client leaves as one frame of up to 64 KiB \
                that the kernel (or the card) cuts into segments (generic segmentation offload through a packet socket on \
                --interface), addressed to the neighbour the client's own frames came from; on the secondary a run of a \
                client's captured segments enters the local kernel as one segment, as receive offload (GRO) would hand it \
                over. Turn it off on the primary when replies to a client must take another route than its requests, or \
                on either to rule it out when debugging.
                """
        )
    )
    var noSegmentationOffload = false

    @Option(
        help: ArgumentHelp(
            "Secondary: largest replication datagram (UDP payload, bytes); what its kernel sends is relayed in pieces that fit, bundled up to it. 0: each segment in a datagram of its own, cut to the client's MSS.",
            discussion: """
                The default, 1472, fills one 1,500-byte frame, so replication datagrams are never IP fragments: a \
                lost fragment leaves an incomplete datagram in the primary's reassembly memory for 30 s, and once \
                that memory is full every relayed datagram is dropped (connections hang). Raise it only on a \
                replication path with a larger MTU (jumbo frames: 8972 for 9000). With 0 a full-size segment no \
                longer fits one frame and travels in fragments.
                """
        )
    )
    var relayBundleBytes: Int = DaemonConfiguration.defaultRelayBundleBytes

    @Option(
        name: .customLong("latency-trace-dir"),
        help: ArgumentHelp(
            "Diagnosis: record when this bridge handled each data segment and write it to DIR when it stops; read with `ftcp-bridge latency-report DIR`.",
            discussion: """
                Each bridge writes latency-ROLE-PID.csv into the directory (it must exist): one line per data \
                segment per hop (read from a queue or the capture, injected, relayed, sent), timestamps from the \
                monotonic clock. A record costs a clock reading and 24 bytes; at most 1,000,000 are kept. A \
                secondary that takes over does not write its trace (the takeover comes first). For finding where \
                a request's time goes, not for every day.
                """,
            valueName: "DIR"
        )
    )
    var latencyTraceDirectory: String?

    @Option(
        help: ArgumentHelp(
            "Milliseconds the bridge process may go without turning its loop before its guardian kills it; 0: never.",
            discussion: """
                Every bridge runs as two processes: a guardian (the one you start, which `lab.sh` and systemd see) and \
                the bridge process it starts, which handles the packets (`status` shows its pid). When the bridge \
                process dies (a crash, SIGKILL, an error) or hangs for this long, the guardian undoes what it left on \
                the host so that clients are no worse off than with one plain server: a primary whose secondary holds \
                the replicas releases the service address (the secondary takes over); a primary alone, or a secondary, \
                removes its rules; a promoted secondary does both. SIGINT, SIGTERM and SIGQUIT sent to the guardian are \
                passed on; SIGHUP is ignored (there is nothing to reload).
                """
        )
    )
    var hangTimeout: UInt64 = 1000

    @Option(
        help: ArgumentHelp(
            "A program to run on every change of state, with keepalived's notify arguments: INSTANCE ftcp MASTER|BACKUP|FAULT|STOP PRIORITY.",
            discussion: """
                MASTER: this node serves the service address; BACKUP: it is the secondary; FAULT: its bridge process \
                died or gave the address up; STOP: stopped. The environment adds FTCP_ROLE, FTCP_STATE (ftcp's own \
                state), FTCP_REASON, FTCP_SERVICE_ADDRESS and FTCP_ADDRESS. The guardian runs it, one call at a time, \
                never on the packet path; a call that takes over 10 s is killed. Not with --no-guardian.
                """
        )
    )
    var notify: String?

    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics on ADDRESS:PORT (GET /metrics); off by default.",
            discussion: """
                For example 127.0.0.1:9464, or the host's management address. Served by the bridge process \
                on a thread of its own, never on the packet path; the values are what `status` shows, \
                refreshed once a second. README's "Metrics" lists the names.
                """,
            valueName: "address:port"
        )
    )
    var metrics: String?

    /// `--metrics` as an address and a port.
    func metricsEndpoint() throws -> (address: IPv4Address, port: UInt16)? {
        guard let metrics else { return nil }
        let parts = metrics.split(separator: ":")
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let port = UInt16(parts[1]), port != 0
        else {
            throw ValidationError(
                "--metrics must be an IPv4 address and a port such as 127.0.0.1:9464, not '\(metrics)'"
            )
        }
        return (address, port)
    }

    @Flag(
        help:
            "Run without a guardian process (for debugging; a crash then leaves the rules and the address as they were)."
    )
    var noGuardian = false

    @Option(help: "Prefix length of the service address when the secondary takes it over.")
    var servicePrefixLength: Int = 24

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        _ = try metricsEndpoint()
        _ = try ports()
        _ = try outboundSelections()
        guard DivergencePolicy(divergence) != nil else {
            throw ValidationError(
                "--divergence takes strict, same-length or PORT=strict|same-length,… (e.g. 80=same-length,5432=same-length), not '\(divergence)'"
            )
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard address != peer else { throw ValidationError("--address and --peer must differ") }
        guard Set(serviceAddress).count == serviceAddress.count else {
            throw ValidationError("--service-address names the same address twice")
        }
        if let service = serviceAddress.first(where: { $0 == address || $0 == peer }) {
            throw ValidationError(
                "--service-address \(service) must differ from both servers' own addresses (--address, --peer); to serve on the primary's own address, leave it out"
            )
        }
        guard outboundQueue != inboundQueue else {
            throw ValidationError("--outbound-queue and --inbound-queue must differ")
        }
        guard mark != 0 else { throw ValidationError("--mark must not be 0") }
        guard heartbeatInterval >= 2, heartbeatInterval <= 10_000 else {
            throw ValidationError("--heartbeat-interval must be between 2 and 10000 ms")
        }
        if let missedHeartbeats, missedHeartbeats < 2 || missedHeartbeats > 1000 {
            throw ValidationError("--missed-heartbeats must be between 2 and 1000")
        }
        guard (1...20).contains(takeoverProbes) else {
            throw ValidationError("--takeover-probes must be between 1 and 20")
        }
        guard (1...5000).contains(probeInterval) else {
            throw ValidationError("--probe-interval must be between 1 and 5000 ms")
        }
        guard (1...32).contains(servicePrefixLength) else {
            throw ValidationError("--service-prefix-length must be 1–32")
        }
        guard maxConnections > 0, maxQueuedBytes >= 65_536 else {
            throw ValidationError("--max-connections must be positive and --max-queued-bytes at least 65536")
        }
        if let notify {
            guard notify.hasPrefix("/"), access(notify, X_OK) == 0 else {
                throw ValidationError("--notify takes the absolute path of an executable program; \(notify) is not one")
            }
            guard !noGuardian else {
                throw ValidationError("--notify needs the guardian (it runs the program): drop --no-guardian")
            }
        }
        guard ["bytes", "digests"].contains(relay) else {
            throw ValidationError("--relay takes bytes or digests, not '\(relay)'")
        }
        if let latencyTraceDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: latencyTraceDirectory, isDirectory: &isDirectory),
                isDirectory.boolValue, access(latencyTraceDirectory, W_OK) == 0
            else {
                throw ValidationError("--latency-trace-dir \(latencyTraceDirectory) is not a writable directory")
            }
        }
        guard relayBundleBytes == 0 || (576...65_000).contains(relayBundleBytes) else {
            throw ValidationError(
                "--relay-bundle-bytes must be 0 (no bundling) or between 576 and 65000 (1472 fits a 1,500-byte MTU)"
            )
        }
    }

    func outboundSelections() throws -> [OutboundSelection] {
        guard let protectOutbound else { return [] }
        let parts = protectOutbound.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var selections: [OutboundSelection] = []
        for part in parts {
            guard let selection = OutboundSelection(part) else {
                throw ValidationError(
                    "--protect-outbound: '\(part)' is neither a port (20) nor ADDRESS:PORT (10.0.0.5:5432)"
                )
            }
            if case let .localPort(port) = selection, try ports().contains(port) {
                throw ValidationError(
                    "--protect-outbound \(port) is also in --port: a protected port's connections are clients'"
                )
            }
            if !selections.contains(selection) { selections.append(selection) }
        }
        guard !selections.isEmpty else { throw ValidationError("--protect-outbound names no port or endpoint") }
        guard selections.filter({ if case .localPort = $0 { true } else { false } }).count <= 15 else {
            throw ValidationError("--protect-outbound takes at most 15 local ports (iptables multiport limit)")
        }
        return selections
    }

    func ports() throws -> [UInt16] {
        let parts = port.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let ports = parts.compactMap { UInt16($0) }.filter { $0 != 0 }
        guard !parts.isEmpty, ports.count == parts.count else {
            throw ValidationError("--port takes TCP ports 1–65535 separated by commas, e.g. 9999 or 21,179")
        }
        guard ports.count <= 15 else {
            throw ValidationError("--port takes at most 15 ports (iptables multiport limit)")
        }
        return Array(Set(ports)).sorted()
    }

    func configuration(role: ReplicationRole) throws -> DaemonConfiguration {
        let key: ReplicationKey
        do {
            key = try KeyFile.load(path: keyFile)
        } catch {
            throw ValidationError("\(error)")
        }
        let controlPath = control ?? "/run/ftcp/ftcp-\(role == .primary ? "primary" : "secondary").sock"
        return DaemonConfiguration(
            role: role,
            interface: interface,
            ownAddress: address,
            peerAddress: peer,
            ports: try ports(),
            key: key,
            controlPath: controlPath,
            replicationPort: replicationPort,
            outboundQueue: outboundQueue,
            inboundQueue: inboundQueue,
            bypassMark: mark,
            heartbeatIntervalMilliseconds: heartbeatInterval,
            missedHeartbeats: missedHeartbeats,
            takeoverProbes: .init(count: takeoverProbes, intervalMilliseconds: probeInterval),
            servicePrefixLength: servicePrefixLength,
            maximumConnections: maxConnections,
            maximumQueuedBytesPerServer: maxQueuedBytes,
            handOverOnStop: handOverOnStop,
            segmentationOffload: !noSegmentationOffload,
            relayBundleBytes: relayBundleBytes,
            separateServiceAddress: serviceAddress.first,
            additionalServiceAddresses: Array(serviceAddress.dropFirst()),
            outboundSelections: try outboundSelections(),
            divergencePolicy: DivergencePolicy(divergence) ?? .strict,
            relaysDigests: relay == "digests",
            latencyTraceDirectory: latencyTraceDirectory
        )
    }

    func makeLogger(role: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let journal = BridgeLogHandler.standardErrorIsJournal(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in BridgeLogHandler(label: label, level: level, journal: journal) }
        return Logger(label: "ftcp-bridge.\(role)")
    }
}
