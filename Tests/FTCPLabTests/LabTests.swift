import Foundation
import XCTest

/// End-to-end tests of the namespace lab (deploy/lab.sh, ftcp-impair, ftcp-labtool): real
/// namespaces, a real bridge, real kernel TCP. Each test brings the lab up and always takes it
/// down again. They skip when not root or without `ip`, and fail when the release binaries are
/// missing (CI builds them first).
final class LabTests: LabTestCase {
    // MARK: The shared segment

    func testTenMegabytesClientToPrimaryAreSeenOnTheSecondary() throws {
        let lab = try requireLab()
        let size = 10_000_000
        let capture = try lab.startCapture(on: "secondary", filter: "tcp and dst host 10.80.0.1", snapLength: 200)
        let transfer = try lab.tcpTransfer(bytes: size)
        XCTAssertEqual(transfer.sink["bytes"], String(size))
        XCTAssertEqual(transfer.source["bytes"], String(size))
        XCTAssertNotNil(transfer.sink["sha256"])
        XCTAssertEqual(
            transfer.sink["sha256"],
            transfer.source["sha256"],
            "the primary received other bytes than the client sent"
        )
        Thread.sleep(forTimeInterval: 0.2)
        let pcap = try capture.finish()
        let segments = pcap.ipv4Packets.filter {
            $0.transportProtocol == 6 && $0.source == "10.80.0.10" && $0.destination == "10.80.0.1"
                && $0.destinationPort == 5001
        }
        let payload = segments.reduce(0) { $0 + $1.payloadLength }
        let largest = segments.map(\.payloadLength).max() ?? 0
        print(
            "secondary saw \(segments.count) client→primary frames, \(payload) payload bytes, largest frame payload \(largest)"
        )
        XCTAssertGreaterThanOrEqual(payload, size, "the secondary's promiscuous capture missed client→primary bytes")
        // The sequence numbers seen must span the whole stream (SYN + data + FIN).
        let sequences = segments.compactMap(\.tcpSequence)
        if let first = sequences.first {
            let span = sequences.map { $0 &- first }.max() ?? 0
            XCTAssertGreaterThanOrEqual(Int(span), size - 65_536)
        }
    }

    // MARK: Loss

    func testClientLinkLossIsSeenByNeitherServer() throws {
        let lab = try requireLab()
        let count = 2000
        try lab.impair("client", "loss 10%")
        let lossy = try lab.numberedDatagrams(runID: 1, count: count, captureOn: ["primary", "secondary"])
        let primary = lossy["primary"] ?? [], secondary = lossy["secondary"] ?? []
        let missing = Arrivals.missing(primary, count: count)
        print(
            "client loss 10%: primary missed \(missing) of \(count), secondary missed \(Arrivals.missing(secondary, count: count))"
        )
        XCTAssertGreaterThanOrEqual(missing, count * 5 / 100)
        XCTAssertLessThanOrEqual(missing, count * 15 / 100)
        XCTAssertEqual(Set(primary), Set(secondary), "a frame lost on the client's link must be lost for both servers")

        try lab.impair("client", "off")
        let clean = try lab.numberedDatagrams(runID: 2, count: count, captureOn: ["primary", "secondary"])
        XCTAssertEqual(Arrivals.missing(clean["primary"] ?? [], count: count), 0, "impair client off left loss behind")
        XCTAssertEqual(Arrivals.missing(clean["secondary"] ?? [], count: count), 0)
    }

    func testSecondaryLinkLossIsMissedOnlyByTheSecondary() throws {
        let lab = try requireLab()
        let count = 2000
        try lab.impair("secondary", "loss 10%")
        let seen = try lab.numberedDatagrams(runID: 3, count: count, captureOn: ["primary", "secondary"])
        let primary = seen["primary"] ?? [], secondary = seen["secondary"] ?? []
        let secondaryMissing = Arrivals.missing(secondary, count: count)
        print(
            "secondary loss 10%: primary missed \(Arrivals.missing(primary, count: count)), secondary missed \(secondaryMissing) of \(count)"
        )
        XCTAssertEqual(
            Arrivals.missing(primary, count: count),
            0,
            "loss on the secondary's link must not touch the primary's copy"
        )
        XCTAssertGreaterThanOrEqual(secondaryMissing, count * 5 / 100)
        XCTAssertLessThanOrEqual(secondaryMissing, count * 15 / 100)
        XCTAssertTrue(Set(secondary).isSubset(of: Set(primary)))

        try lab.impair("secondary", "off")
        let clean = try lab.numberedDatagrams(runID: 4, count: count, captureOn: ["primary", "secondary"])
        XCTAssertEqual(
            Arrivals.missing(clean["secondary"] ?? [], count: count),
            0,
            "impair secondary off left loss behind"
        )
    }

    // MARK: Delay and reordering

    func testDelayAddsToTheRoundTripTime() throws {
        let lab = try requireLab()
        let baseline = try lab.udpRoundTrip()
        try lab.impair("client", "delay 20ms")
        let delayed = try lab.udpRoundTrip()
        try lab.impair("client", "off")
        let restored = try lab.udpRoundTrip()
        print(
            String(
                format: "UDP RTT median: baseline %.3f ms, delay 20ms %.3f ms, after off %.3f ms",
                baseline.median,
                delayed.median,
                restored.median
            )
        )
        XCTAssertGreaterThanOrEqual(baseline.received, 15)
        XCTAssertGreaterThanOrEqual(delayed.received, 15)
        // The client's link is delayed in both directions: the round trip grows by about 40 ms.
        XCTAssertGreaterThanOrEqual(delayed.median - baseline.median, 20)
        XCTAssertLessThan(delayed.median, 80)
        XCTAssertLessThan(restored.median, baseline.median + 5)
    }

    func testReorderingInvertsArrivalsAndOffRestoresOrder() throws {
        let lab = try requireLab()
        let count = 2000
        let before = try lab.numberedDatagrams(runID: 5, count: count)["primary"] ?? []
        XCTAssertEqual(Arrivals.inversions(before), 0, "datagrams arrived out of order without impairment")
        XCTAssertEqual(Arrivals.missing(before, count: count), 0)

        try lab.impair("client", "delay 5ms reorder 25%")
        let reordered = try lab.numberedDatagrams(runID: 6, count: count)["primary"] ?? []
        let inversions = Arrivals.inversions(reordered)
        print(
            "reorder 25% with delay 5 ms: \(inversions) inversions, \(Arrivals.missing(reordered, count: count)) missing of \(count)"
        )
        XCTAssertGreaterThan(inversions, 0)
        XCTAssertEqual(Arrivals.missing(reordered, count: count), 0, "reordering must not lose datagrams")

        try lab.impair("client", "off")
        // ftcp-impair writes its final counters as it exits (on 'off').
        let statistics = try lab.impairStatistics(host: "client")
        print("ftcp-impair counters: \(statistics)")
        XCTAssertGreaterThanOrEqual(statistics["received"] ?? 0, count)
        XCTAssertGreaterThan(statistics["reordered"] ?? 0, count / 10)
        XCTAssertEqual(statistics["received"], statistics["accepted"], "ftcp-impair must accept everything it received")
        XCTAssertEqual(statistics["verdictErrors"], 0)
        XCTAssertEqual(statistics["held"], 0)

        let after = try lab.numberedDatagrams(runID: 7, count: count)["primary"] ?? []
        XCTAssertEqual(Arrivals.inversions(after), 0, "impair client off left reordering behind")
        XCTAssertEqual(Arrivals.missing(after, count: count), 0)
    }

    // MARK: Rate

    func testRateLimitShapesTCPThroughput() throws {
        let lab = try requireLab()
        let unshaped = try lab.tcpTransfer(bytes: 20_000_000, port: 5002)
        try lab.impair("client", "rate 10mbit")
        let shapedBytes = 2_500_000
        let shaped = try lab.tcpTransfer(bytes: shapedBytes, port: 5003)
        XCTAssertEqual(shaped.sink["sha256"], shaped.source["sha256"])
        let unshapedSeconds = try XCTUnwrap(unshaped.sink["seconds"].flatMap(Double.init))
        let shapedSeconds = try XCTUnwrap(shaped.sink["seconds"].flatMap(Double.init))
        let unshapedMbps = 20_000_000 * 8 / unshapedSeconds / 1e6
        let shapedMbps = Double(shapedBytes) * 8 / shapedSeconds / 1e6
        print(String(format: "TCP throughput: unshaped %.0f Mbit/s, rate 10mbit %.2f Mbit/s", unshapedMbps, shapedMbps))
        XCTAssertGreaterThan(shapedMbps, 6)
        XCTAssertLessThan(shapedMbps, 11)
        XCTAssertGreaterThan(unshapedMbps, shapedMbps * 10)
    }

    // MARK: lab.sh contract

    func testImpairWithoutTheBinaryNamesTheBuildCommand() throws {
        let lab = try requireLab()
        let result = try lab.labScriptResult(
            ["impair", "client", "delay 5ms"],
            environment: ["FTCP_IMPAIR": "/nonexistent/ftcp-impair"]
        )
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("swift build -c release --product ftcp-impair"), result.output)
        let badHost = try lab.labScriptResult(["impair", "router", "loss 1%"], environment: [:])
        XCTAssertNotEqual(badHost.status, 0)
        XCTAssertTrue(badHost.output.contains("unknown host"), badHost.output)
    }
}
