import Foundation
import XCTest

/// The benchmark (`deploy/bench.sh --quick`) runs from a fresh clone and produces every figure
/// it promises: this proves it still works, not that the machine is fast. Its report goes to a
/// new folder under /tmp, which it names on its last line and which is kept for a reader.
final class BenchmarkTests: LabTestCase {
    func testQuickBenchmarkProducesEveryFigure() throws {
        let lab = try requireLab()
        let binaries = (try Lab.binary("ftcp-bridge", variable: "FTCP_BRIDGE") as NSString).deletingLastPathComponent
        lab.tearDown()
        let run = try lab.benchmark(["--quick"], environment: ["FTCP_BIN": binaries], timeout: .seconds(600))
        XCTAssertEqual(run.status, 0, run.output)
        // The output is its standard output, then its standard error: the last line of the first.
        let named = run.output.split(separator: "\n").last { $0.hasPrefix("bench: report in ") }.map(String.init) ?? ""
        XCTAssertTrue(named.hasPrefix("bench: report in /tmp/ftcp-bench."), "no report folder named: \(run.output)")
        let out = String(named.dropFirst("bench: report in ".count))
        for file in ["results.json", "results.md", "failover.svg", "raw.txt"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), "\(file) missing: \(run.output)")
        }
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json")))
            as? [String: Any]
        let failover = json?["failover"] as? [String: Any]
        XCTAssertEqual(failover?["failed_trials"] as? Int, 0, "a failover trial lost or corrupted bytes: \(run.output)")
        XCTAssertNotNil(failover?["stall_p50_ms"] as? Double)
        XCTAssertGreaterThan(failover?["spanning_trials"] as? Int ?? 0, 0, "no cut fell inside its download")
        let pipeline = json?["pipeline"] as? [String: Any]
        for key in ["clean_rate_per_s", "ftcp_rate_per_s", "replicated_rate_per_s"] {
            XCTAssertGreaterThan(pipeline?[key] as? Double ?? 0, 0, "\(key) missing: \(run.output)")
        }
        let channel = json?["replication_bytes_per_delivered_byte"] as? [String: Any]
        // The client's bytes are captured by the secondary itself: the channel carries only
        // acknowledgments for them, far under 5% of what is delivered whatever the machine's speed.
        let upward = channel?["client_to_server"] as? Double ?? .nan
        XCTAssertLessThan(upward, 0.05, "replication bytes per client byte: \(upward)")
        let downward = channel?["server_to_client"] as? Double ?? 0
        XCTAssertGreaterThan(downward, 0, "no replication bytes counted for the server's bytes")
        let table = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
        // bench-report itself exits 1 when a figure is missing; the table names each part.
        for part in [
            "shaped to 100 Mbit/s", "shaped to 1 Gbit/s", "unshaped", "pass-through ceiling", "connect()",
            "64-byte request/response", "client-visible stall p99", "scale", "CPU time", "replicated limit",
            "pipelined 64-byte requests", "replication channel bytes", "rate back",
        ] {
            XCTAssertTrue(table.contains(part), "\(part) missing from the table:\n\(table)")
        }
        print(table)
    }
}
