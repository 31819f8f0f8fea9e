import Foundation
import XCTest

/// A real Prometheus server (Debian's `prometheus`) scrapes the primary bridge's `--metrics`
/// endpoint on the lab, and queries through its HTTP API return what `status` shows.
final class PrometheusLabTests: RunningFTCPTestCase {
    override var extraBridgeArguments: String? { "--metrics 127.0.0.1:9464" }

    /// One instant query through Prometheus's HTTP API, from inside the primary's namespace.
    private func query(_ expression: String) throws -> [(labels: [String: String], value: Double)] {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let (status, run) = try requireLab().run(
            "primary",
            "query",
            ["curl", "-s", "--max-time", "5", "http://127.0.0.1:9090/api/v1/query?query=\(encoded)"]
        )
        // Not JSON (a starting Prometheus answers 503 in plain text, which curl -s takes for a
        // success): no result yet, and `eventually` asks again.
        guard status == 0, let data = run.output.data(using: .utf8),
            let answer = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            let body = answer["data"] as? [String: Any], let results = body["result"] as? [[String: Any]]
        else { return [] }
        return results.compactMap { result in
            guard let labels = result["metric"] as? [String: String], let pair = result["value"] as? [Any],
                pair.count == 2, let text = pair[1] as? String, let value = Double(text)
            else { return nil }
            return (labels, value)
        }
    }

    /// Polls `expression` until `accept` holds for its first result (up to 30 s).
    @discardableResult
    private func eventually(_ expression: String, _ accept: (Double) -> Bool) throws -> Double? {
        let deadline = Date().addingTimeInterval(30)
        var last: Double?
        while Date() < deadline {
            last = try query(expression).first?.value
            if let last, accept(last) { return last }
            Thread.sleep(forTimeInterval: 0.5)
        }
        XCTFail("\(expression): last value \(last.map { "\($0)" } ?? "none")")
        return last
    }

    func testPrometheusScrapesWhatStatusShows() throws {
        let lab = try requireLab()
        let prometheus = try XCTUnwrap(LabProcess.locate("prometheus"), "Debian's prometheus is not installed")
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ftcp-prometheus-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = directory.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: ftcp
            static_configs:
              - targets: ['127.0.0.1:9464']
        """.write(to: configuration, atomically: true, encoding: .utf8)
        _ = try lab.background(
            "primary",
            "prometheus",
            [
                prometheus, "--config.file=\(configuration.path)",
                "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                "--web.listen-address=127.0.0.1:9090", "--log.level=warn",
            ]
        )
        // Traffic, so the counters have something to say.
        let session = try session("scraped", download: 5_000_000, upload: 1_000_000)
        _ = finish([("scraped", session)], context: "the scraped session")

        try eventually("ftcp_node_state{role=\"primary\",state=\"replicating\"}") { $0 == 1 }
        try eventually("ftcp_peer_up") { $0 == 1 }
        try eventually("ftcp_uptime_seconds") { $0 > 0 }
        // The session's bytes, merged and sent: what status counts, once a scrape saw it.
        let counters = try XCTUnwrap(try status("primary")["counters"] as? [String: Any])
        let sent = Double(counters["bytesSentToClients"] as? Int ?? 0)
        XCTAssertGreaterThanOrEqual(sent, 5_000_000, "status: \(counters)")
        try eventually("ftcp_sent_to_clients_bytes_total") { $0 >= 5_000_000 && $0 <= sent + 1_000_000 }
        let fromClients = Double(counters["segmentsFromClients"] as? Int ?? 0)
        try eventually("ftcp_segments_total{source=\"client\"}") { $0 > 0 && $0 <= fromClients + 10_000 }
        try eventually("ftcp_replication_datagrams_received_total") { $0 > 0 }
        try eventually("ftcp_takeovers_total") { $0 == 0 }
        XCTAssertEqual(try query("ftcp_divergences_total").first?.value, 0)
        // The queues the kernel reports, by name.
        XCTAssertEqual(
            Set(try query("ftcp_nfqueue_waiting_packets").compactMap { $0.labels["queue"] }),
            ["outbound", "inbound"]
        )
    }
}
