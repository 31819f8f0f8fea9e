import FTCPLinux
import Testing

@testable import FTCPDaemon

@Suite("Metrics in Prometheus's exposition format")
struct BridgeMetricsTests {
    static func status(
        role: String = "primary",
        state: String = "replicating",
        counters: [String: UInt64] = [:],
        replication: [String: UInt64] = [:]
    ) -> DaemonStatus {
        DaemonStatus(
            role: role,
            state: state,
            stateReason: "",
            stateSinceSeconds: 2.5,
            uptimeSeconds: 10,
            peer: DaemonStatus.PeerStatus(address: "10.80.0.2", state: "alive", alive: true),
            counters: counters,
            replication: replication,
            connections: [],
            connectionsByKind: ["protected": 3, "alone": 1]
        )
    }

    static func text(_ metrics: BridgeMetrics) -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test("a snapshot becomes gauges and counters with Prometheus's names")
    func snapshot() {
        let metrics = BridgeMetrics()
        metrics.publish(
            Self.status(counters: ["divergences": 3, "bytesSentToClients": 5_000], replication: ["droppedBadMAC": 2]),
            queues: [7401: NetfilterQueueStatistics(queue: 7401, waiting: 4, queueDropped: 1, userDropped: 0)],
            outboundQueue: 7401,
            inboundQueue: 7402
        )
        let text = Self.text(metrics)
        for line in [
            #"ftcp_node_state{role="primary",state="replicating"} 1.0"#, "ftcp_peer_up 1.0",
            "ftcp_state_seconds 2.5", #"ftcp_connections{protection="protected"} 3.0"#, "ftcp_divergences_total 3",
            "ftcp_sent_to_clients_bytes_total 5000", #"ftcp_replication_datagrams_dropped_total{reason="bad_mac"} 2"#,
            #"ftcp_nfqueue_waiting_packets{queue="outbound"} 4.0"#,
            #"ftcp_nfqueue_dropped_total{queue="outbound",reason="queue_full"} 1"#, "ftcp_takeovers_total 0",
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test("counters only grow: by the difference, and by the whole value after the bridge's counters restarted")
    func countersOnlyGrow() {
        let metrics = BridgeMetrics()
        let queues: [UInt16: NetfilterQueueStatistics] = [:]
        metrics.publish(Self.status(counters: ["divergences": 3]), queues: queues, outboundQueue: 1, inboundQueue: 2)
        metrics.publish(Self.status(counters: ["divergences": 5]), queues: queues, outboundQueue: 1, inboundQueue: 2)
        #expect(Self.text(metrics).contains("ftcp_divergences_total 5"))
        // A change of role: the new bridge counts from zero.
        metrics.publish(
            Self.status(role: "secondary", counters: ["divergences": 1]),
            queues: queues,
            outboundQueue: 1,
            inboundQueue: 2
        )
        metrics.noteTakeover(planned: true, silenceMilliseconds: 7)
        let text = Self.text(metrics)
        #expect(text.contains("ftcp_divergences_total 6"))
        #expect(text.contains(#"ftcp_node_state{role="primary",state="replicating"} 0.0"#))
        #expect(text.contains(#"ftcp_node_state{role="secondary",state="replicating"} 1.0"#))
        #expect(text.contains("ftcp_switchovers_total 1"))
        #expect(text.contains("ftcp_last_takeover_silence_seconds 0.007"))
        #expect(text.contains(#"ftcp_connections{protection="inherited"} 0.0"#))
    }
}
