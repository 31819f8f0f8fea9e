import Foundation
import XCTest

/// The benchmark (`deploy/bench.sh --quick`) runs from a fresh clone and produces every figure
/// it promises: this proves it still works, not that the machine is fast.
final class BenchmarkTests: LabTestCase {
    func testQuickBenchmarkProducesEveryFigure() throws {
        let lab = try requireLab()
        let binaries = (try Lab.binary("ftcp-bridge", variable: "FTCP_BRIDGE") as NSString).deletingLastPathComponent
        let out = NSTemporaryDirectory() + "ftcp-bench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        lab.tearDown()
        let run = try lab.benchmark(
            ["--quick", "--out", out],
            environment: ["FTCP_BIN": binaries],
            timeout: .seconds(600)
        )
        XCTAssertEqual(run.status, 0, run.output)
        for file in ["results.json", "results.md", "failover.svg", "raw.txt"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), "\(file) missing: \(run.output)")
        }
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json")))
            as? [String: Any]
        let failover = json?["failover"] as? [String: Any]
        XCTAssertEqual(failover?["failed_trials"] as? Int, 0, "a failover trial lost or corrupted bytes: \(run.output)")
        XCTAssertNotNil(failover?["stall_p50_ms"] as? Double)
        let table = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
        // bench-report itself exits 1 when a figure is missing; the table names each part.
        for part in [
            "shaped to 100 Mbit/s", "shaped to 1 Gbit/s", "unshaped", "pass-through ceiling", "connect()",
            "64-byte request/response", "client-visible stall p99", "scale", "CPU time",
        ] {
            XCTAssertTrue(table.contains(part), "\(part) missing from the table:\n\(table)")
        }
        print(table)
    }
}
