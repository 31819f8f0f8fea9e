import Foundation
import XCTest

/// Planned switchovers with a service address of its own (10.80.0.100): the primary hands the
/// address to the secondary while both are healthy; sessions carry on byte-exact with a stall
/// far below a failover's (nothing to detect, no probes), and the old primary serves as the
/// new one's secondary at once.
///
/// `FTCP_SWITCHOVER_ROUNDS` sets the rounds of `testSwitchoversDuringTransfers` (default 20).
final class SwitchoverTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }

    /// Asks `host`'s bridge for a switchover and returns what the command printed.
    @discardableResult
    private func switchover(through host: String, force: Bool = false, expectSuccess: Bool = true) throws -> String {
        let lab = try requireLab()
        var arguments = ["\(binaries)/ftcp-bridge", "switchover", "--control", "/run/ftcp-lab/\(host).sock"]
        if force { arguments.append("--force") }
        let (status, run) = try lab.run(host, "switchover-\(host)", arguments, timeout: .seconds(15))
        if expectSuccess {
            XCTAssertEqual(status, 0, "switchover through \(host): \(run.output) \(run.errors)")
        } else {
            XCTAssertNotEqual(status, 0, "switchover through \(host) should have been refused: \(run.output)")
        }
        return run.output
    }

    func testSwitchoversDuringTransfers() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["FTCP_SWITCHOVER_ROUNDS"] ?? "") ?? 20
        var (primary, secondary) = ("primary", "secondary")
        var stalls: [Double] = []
        func sessions(_ round: String) throws -> [(String, LabProcess)] {
            [
                ("down-\(round)", try session("down-\(round)", download: 150_000_000, upload: 1_000_000)),
                ("up-\(round)", try session("up-\(round)", download: 1_000, upload: 80_000_000)),
                (
                    "idle-\(round)",
                    try session("idle-\(round)", download: 100_000, upload: 50_000, thinkMilliseconds: 100)
                ),
            ]
        }
        // At 1 Gbit/s the bulk sessions last over a second, so each switchover (0.3 s in) falls
        // inside them, not after them.
        try requireLab().impair("client", "rate 1gbit")
        // The same sessions with no switchover: the stalls the data path has anyway here.
        try waitFor(primary, role: "primary", state: "replicating")
        try waitFor(secondary, role: "secondary", state: "replicating")
        let baseline = finish(try sessions("baseline"), context: "with no switchover")
        for round in 1...rounds {
            try waitFor(primary, role: "primary", state: "replicating")
            try waitFor(secondary, role: "secondary", state: "replicating")
            let sessions = try sessions("\(round)")
            Thread.sleep(forTimeInterval: 0.3)
            for (name, run) in sessions {
                XCTAssertTrue(run.process.isRunning, "round \(round): \(name) ended before the switchover")
            }
            // Either node may be asked: odd rounds the primary, even rounds the secondary.
            try switchover(through: round % 2 == 1 ? primary : secondary)
            let longest = finish(sessions, context: "round \(round)")
            stalls.append(longest)
            (primary, secondary) = (secondary, primary)
            print("switchover round=\(round) longest_stall_ms=\(longest)")
        }
        let sorted = stalls.sorted()
        let median = sorted[sorted.count / 2]
        let p99 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
        print(
            "switchover rounds=\(rounds) baseline_ms=\(baseline) p50_ms=\(median) p99_ms=\(p99) max_ms=\(sorted.last ?? 0) all=\(stalls.map { String(format: "%.1f", $0) }.joined(separator: ","))"
        )
        // A failover costs 100–200 ms here (detection, probes); a switchover has neither.
        XCTAssertLessThanOrEqual(median, 60, "the median switchover stall is no better than a failover's")
        XCTAssertLessThanOrEqual(sorted.last ?? 0, 1_000, "a switchover stalled a session for over a second")
    }

    /// A rolling upgrade: move the service to the secondary, restart the old primary (its
    /// application and bridge: the upgrade), it rejoins; sessions opened after that rejoin are
    /// protected, survive the move back and the restart of the other node.
    func testRollingUpgrade() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        try switchover(through: "primary")
        try waitFor("secondary", role: "primary", state: "replicating")
        // Upgrade the old primary: stop and start its application and bridge; it rejoins.
        try labScript(["revive", "primary"])
        try waitFor("secondary", role: "primary", state: "replicating")
        try waitFor("primary", role: "secondary", state: "replicating")
        let sessions = [
            ("down", try session("down", download: 200_000_000, upload: 1_000_000)),
            ("slow", try session("slow", download: 200_000, upload: 100_000, thinkMilliseconds: 600)),
        ]
        Thread.sleep(forTimeInterval: 0.3)
        try switchover(through: "secondary")
        try waitFor("primary", role: "primary", state: "replicating")
        // Upgrade the other node while the sessions go on: they are the new primary's now.
        try labScript(["revive", "secondary"])
        try waitFor("secondary", role: "secondary", state: "replicating")
        let longest = finish(sessions, context: "rolling upgrade")
        XCTAssertLessThanOrEqual(longest, 1_000)
        // The slow session is inherited by the primary and has no replica: a switchover now
        // would lose it, so one is refused unless forced.
        let slow = try session("slow-2", download: 100_000, upload: 50_000, thinkMilliseconds: 500)
        Thread.sleep(forTimeInterval: 0.3)
        try switchover(through: "primary")
        try waitFor("secondary", role: "primary", state: "replicating")
        let refused = try switchover(through: "secondary", expectSuccess: false)
        XCTAssertTrue(
            refused.contains("refused"),
            "a switchover with an inherited connection open was not refused: \(refused)"
        )
        XCTAssertLessThanOrEqual(finish([("slow-2", slow)], context: "after the refusal"), 1_000)
        print("rolling upgrade longest_stall_ms=\(longest)")
    }
}
