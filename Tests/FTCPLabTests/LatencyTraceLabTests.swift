import Foundation
import XCTest

/// Where a request's time goes (issue 13, item 2): both bridges record, with
/// `--latency-trace-dir`, when they handled each data segment, the client when it wrote and
/// read, and `ftcp-bridge latency-report` lines the hops up.
final class LatencyTraceLabTests: RunningFTCPTestCase {
    static let directory = "/tmp/ftcp-lab-latency-trace"
    override var extraBridgeArguments: String? { "--latency-trace-dir \(Self.directory)" }

    override func setUpWithError() throws {
        // The bridges refuse a directory that is not there.
        try? FileManager.default.removeItem(atPath: Self.directory)
        try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(atPath: Self.directory)
    }

    /// 500 exchanges of 64 bytes out and 59 back: every one is found at every hop of both
    /// bridges, and in causal order at each (an interval counts an exchange only when its end
    /// came after its start). A hop that is not recorded, or recorded after the system call that
    /// hands the segment on (the next reader, on this host, may run first), fails it.
    func testEveryExchangeIsTracedAtEveryHopInOrder() throws {
        let lab = try requireLab()
        try waitFor("secondary", role: "secondary", state: "replicating")
        let exchanges = 500
        let clientTrace = "\(Self.directory)/client.csv"
        _ = try lab.foreground(
            "client",
            "round-trip",
            [
                lab.labtool, "round-trip", "--connect", "\(serviceAddress):9999", "--count", String(exchanges),
                "--trace", clientTrace, "--timeout-s", "60",
            ],
            timeout: .seconds(70)
        )
        // The bridges write their traces as they stop.
        try labScript(["ftcp", "stop"])
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory)
        XCTAssertEqual(names.filter { $0.hasPrefix("latency-primary-") }.count, 1, "\(names)")
        XCTAssertEqual(names.filter { $0.hasPrefix("latency-secondary-") }.count, 1, "\(names)")

        // Any namespace will do: the report only reads files.
        let (status, report) = try lab.run(
            "client",
            "latency-report",
            ["\(binaries)/ftcp-bridge", "latency-report", Self.directory, "--client", clientTrace]
        )
        let output = report.output
        print(output)
        XCTAssertEqual(status, 0, "\(output) \(report.errors)")

        var counts: [String: Int] = [:]
        var medians: [String: Double] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("latency interval=") {
            var fields: [String: String] = [:]
            for part in line.split(separator: " ").dropFirst() {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            guard let key = fields["interval"] else { continue }
            counts[key] = fields["count"].flatMap { Int($0) }
            medians[key] = fields["p50_us"].flatMap { Double($0) }
        }
        let hops = [
            "client-primary", "primary-application", "client-secondary", "secondary-injection",
            "secondary-application", "secondary-relay", "channel", "primary-waits-secondary", "primary-merge-send",
            "primary-client", "primary-request-answer", "client-exchange",
        ]
        for hop in hops {
            XCTAssertEqual(counts[hop], exchanges, "interval \(hop): \(output)")
        }
        // The parts of the exchange at the client: each shorter than the whole.
        let whole = try XCTUnwrap(medians["client-exchange"])
        for hop in hops where hop != "client-exchange" {
            XCTAssertLessThanOrEqual(medians[hop] ?? .infinity, whole, "interval \(hop) longer than the exchange")
        }
    }
}
