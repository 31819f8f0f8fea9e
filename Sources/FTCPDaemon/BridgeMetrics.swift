import FTCPLinux
import Prometheus
import Synchronization

/// The bridge's metrics in Prometheus's exposition format (`--metrics`), through
/// swift-prometheus's registry: what `status` shows, as a Prometheus server expects it (names
/// `ftcp_…`, counters `…_total`, durations in seconds, sizes in bytes).
///
/// The run loop publishes a snapshot once a second (``publish(_:queues:outboundQueue:inboundQueue:)``);
/// the endpoint's thread only reads the registry. The node's counts of takeovers and switchovers
/// live here, across the node's changes of role; the bridge's own counters start again with
/// each role, so a counter that went down is taken as restarted, and Prometheus's counters
/// still only grow.
public final class BridgeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let state = Mutex(State())

    private struct State {
        /// The last raw value seen of each counter fed from a snapshot.
        var previous: [String: UInt64] = [:]
        /// The role and state whose `ftcp_node_state` gauge is 1.
        var current: (role: String, state: String)?
    }

    /// A counter of the bridge's `status`, and the labels it is exported under.
    struct CounterSource: Sendable {
        var metric: String
        var labels: [(String, String)]
        /// The key in `status`'s counters, or in its replication counters.
        var key: String
        var fromReplication = false
    }

    /// The counters exported, and where each comes from. README's "Metrics" lists them.
    static let counterSources: [CounterSource] =
        [
            .init(metric: "ftcp_divergences_total", labels: [], key: "divergences"),
            .init(metric: "ftcp_sent_to_clients_bytes_total", labels: [], key: "bytesSentToClients"),
            .init(metric: "ftcp_segments_total", labels: [("source", "client")], key: "segmentsFromClients"),
            .init(metric: "ftcp_segments_total", labels: [("source", "own_kernel")], key: "segmentsFromPrimaryKernel"),
            .init(
                metric: "ftcp_segments_total",
                labels: [("source", "peer_kernel")],
                key: "segmentsFromSecondaryKernel"
            ),
            .init(metric: "ftcp_segments_total", labels: [("source", "captured_client")], key: "injected"),
            .init(metric: "ftcp_segments_total", labels: [("source", "relayed_to_primary")], key: "relayedToPrimary"),
            .init(metric: "ftcp_relayed_as_digests_total", labels: [], key: "relayedAsDigests"),
            .init(metric: "ftcp_relay_whole_requested_total", labels: [], key: "relayWholeRequested"),
            .init(
                metric: "ftcp_client_syns_dropped_total",
                labels: [("reason", "table_full")],
                key: "droppedTableFull"
            ),
            .init(metric: "ftcp_table_evictions_total", labels: [("kind", "handshake")], key: "evictedHandshakes"),
            .init(metric: "ftcp_table_evictions_total", labels: [("kind", "closed")], key: "evictedClosed"),
            .init(metric: "ftcp_table_evictions_total", labels: [("kind", "secondary")], key: "evicted"),
            .init(metric: "ftcp_replicas_lost_total", labels: [("server", "primary")], key: "replicasLostPrimary"),
            .init(metric: "ftcp_replicas_lost_total", labels: [("server", "secondary")], key: "replicasLostSecondary"),
            .init(metric: "ftcp_unacceptable_resets_total", labels: [], key: "unacceptableResets"),
            .init(
                metric: "ftcp_previous_connections_answered_total",
                labels: [],
                key: "previousConnectionsAnswered"
            ),
            .init(metric: "ftcp_replication_datagrams_sent_total", labels: [], key: "sent", fromReplication: true),
            .init(metric: "ftcp_replication_sent_bytes_total", labels: [], key: "sentBytes", fromReplication: true),
            .init(
                metric: "ftcp_replication_datagrams_received_total",
                labels: [],
                key: "accepted",
                fromReplication: true
            ),
        ]
        + [
            ("malformed", "droppedMalformed"), ("bad_mac", "droppedBadMAC"), ("wrong_role", "droppedWrongRole"),
            ("old_epoch", "droppedOldEpoch"), ("replay", "droppedReplay"), ("invalid_body", "droppedInvalidBody"),
            ("incompatible_version", "droppedIncompatibleVersion"),
        ].map { reason, key in
            .init(
                metric: "ftcp_replication_datagrams_dropped_total",
                labels: [("reason", reason)],
                key: key,
                fromReplication: true
            )
        }

    public init() {
        // Known from the start, so a query finds them at zero before the first event.
        _ = counter("ftcp_takeovers_total")
        _ = counter("ftcp_switchovers_total")
    }

    /// This node took the service address over (a failover) or was handed it (a switchover),
    /// `silenceMilliseconds` after the old primary's last word.
    public func noteTakeover(planned: Bool, silenceMilliseconds: UInt64 = 0) {
        counter(planned ? "ftcp_switchovers_total" : "ftcp_takeovers_total").increment()
        gauge("ftcp_last_takeover_silence_seconds").set(to: Double(silenceMilliseconds) / 1000)
    }

    /// Publishes one snapshot of the bridge: `status` without its list of connections, and the
    /// kernel's statistics of the bridge's queues.
    public func publish(
        _ status: DaemonStatus,
        queues: [UInt16: NetfilterQueueStatistics],
        outboundQueue: UInt16,
        inboundQueue: UInt16
    ) {
        state.withLock { state in
            if let current = state.current, current != (status.role, status.state) {
                gauge("ftcp_node_state", labels: [("role", current.role), ("state", current.state)])
                    .set(to: 0)
            }
            state.current = (status.role, status.state)
            gauge("ftcp_node_state", labels: [("role", status.role), ("state", status.state)])
                .set(to: 1)
            gauge("ftcp_peer_up").set(to: status.peer.alive ? 1 : 0)
            gauge("ftcp_state_seconds").set(to: status.stateSinceSeconds)
            gauge("ftcp_uptime_seconds").set(to: status.uptimeSeconds)
            for kind in ["protected", "alone", "inherited"] {
                gauge("ftcp_connections", labels: [("protection", kind)])
                    .set(to: Double(status.connectionsByKind[kind] ?? 0))
            }
            for source in Self.counterSources {
                let values = source.fromReplication ? status.replication : status.counters
                // A counter this role's bridge does not keep is exported at zero: every name is there.
                advance(source.metric, labels: source.labels, to: values[source.key] ?? 0, state: &state)
            }
            for (queue, name) in [(outboundQueue, "outbound"), (inboundQueue, "inbound")] {
                guard let statistics = queues[queue] else { continue }
                gauge("ftcp_nfqueue_waiting_packets", labels: [("queue", name)])
                    .set(to: Double(statistics.waiting))
                advance(
                    "ftcp_nfqueue_dropped_total",
                    labels: [("queue", name), ("reason", "queue_full")],
                    to: statistics.queueDropped,
                    state: &state
                )
                advance(
                    "ftcp_nfqueue_dropped_total",
                    labels: [("queue", name), ("reason", "socket_full")],
                    to: statistics.userDropped,
                    state: &state
                )
            }
        }
    }

    /// What each metric means, for its `# HELP` line (README's "Metrics" says the same).
    static let help: [String: String] = [
        "ftcp_node_state": "1 for the node's current role and state, 0 for earlier ones",
        "ftcp_peer_up": "1 while the peer's bridge is heard on the replication channel",
        "ftcp_state_seconds": "Time in the current state",
        "ftcp_uptime_seconds": "Time since the bridge process started",
        "ftcp_connections": "Open connections with and without a replica on the peer",
        "ftcp_takeovers_total": "Times this node took the service address over after a failure",
        "ftcp_switchovers_total": "Times the service address was handed to this node in a planned switchover",
        "ftcp_last_takeover_silence_seconds":
            "At this node's last takeover or switchover: from the old primary's last word to the address claimed here",
        "ftcp_divergences_total": "Connections whose two servers produced different bytes",
        "ftcp_replicas_lost_total": "Connections one server's copy of which ended while the other's went on",
        "ftcp_sent_to_clients_bytes_total": "Payload bytes the primary sent to clients",
        "ftcp_segments_total": "TCP segments handled, by source",
        "ftcp_relayed_as_digests_total": "Segments of this secondary's kernel relayed as digests of their bytes",
        "ftcp_relay_whole_requested_total":
            "Connections this primary asked the secondary to relay whole again (their primary replica was lost)",
        "ftcp_client_syns_dropped_total": "Client SYNs dropped, by reason",
        "ftcp_table_evictions_total": "Connection-table entries given up for new connections, by kind",
        "ftcp_unacceptable_resets_total": "Client resets whose sequence number RFC 5961 does not accept",
        "ftcp_previous_connections_answered_total":
            "Kernels' ACKs of a connection still held on a client's ports, answering its new SYN, passed to it",
        "ftcp_replication_datagrams_sent_total": "Replication datagrams sent to the peer",
        "ftcp_replication_sent_bytes_total": "Bytes of the replication datagrams sent to the peer, resends included",
        "ftcp_replication_datagrams_received_total": "Authentic replication datagrams received from the peer",
        "ftcp_replication_datagrams_dropped_total": "Replication datagrams dropped, by reason",
        "ftcp_nfqueue_waiting_packets": "Packets waiting in the bridge's NFQUEUE, as the kernel reports",
        "ftcp_nfqueue_dropped_total": "Packets the kernel dropped from the bridge's NFQUEUE, by reason",
    ]

    private func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "ftcp",
            metricName: String(name.dropFirst("ftcp_".count)),
            unitName: "",
            helpText: Self.help[name] ?? ""
        )
    }

    private func counter(_ name: String, labels: [(String, String)] = []) -> Counter {
        labels.isEmpty
            ? registry.makeCounter(descriptor: descriptor(name))
            : registry.makeCounter(descriptor: descriptor(name), labels: labels)
    }

    private func gauge(_ name: String, labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty
            ? registry.makeGauge(descriptor: descriptor(name))
            : registry.makeGauge(descriptor: descriptor(name), labels: labels)
    }

    /// The exposition text, for a scrape.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    /// Moves a Prometheus counter on by what a raw counter grew since the last snapshot (all of
    /// it, if it went down: its bridge started again in another role).
    private func advance(_ metric: String, labels: [(String, String)], to value: UInt64, state: inout State) {
        let key = metric + labels.map { "|\($0)=\($1)" }.joined()
        let before = state.previous[key] ?? 0
        let growth = value >= before ? value - before : value
        state.previous[key] = value
        let counter = counter(metric, labels: labels)
        if growth > 0 { counter.increment(by: Int64(clamping: growth)) }
    }
}
