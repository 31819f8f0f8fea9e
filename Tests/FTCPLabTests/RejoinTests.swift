import Foundation
import XCTest

/// Continuous protection with a service address of its own (10.80.0.100): failovers in a row,
/// alternating between the two hosts. In each round the current primary is cut off in the
/// middle of sessions opened after the last rejoin; the other host takes the address over and
/// goes on as primary; the cut host comes back as after a reboot, finds its peer serving and
/// rejoins it as the secondary; and the next round cuts the new primary.
///
/// `FTCP_REJOIN_ROUNDS` sets the number of rounds (default 4).
final class RejoinTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }

    func testAlternatingFailoversWithRejoin() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["FTCP_REJOIN_ROUNDS"] ?? "") ?? 4
        var (primary, secondary) = ("primary", "secondary")
        var stalls: [Double] = []
        // At 1 Gbit/s the bulk sessions last over a second and a half, so each cut (0.4 s in)
        // falls inside them, not after them.
        try requireLab().impair("client", "rate 1gbit")
        for round in 1...rounds {
            try waitFor(primary, role: "primary", state: "replicating")
            try waitFor(secondary, role: "secondary", state: "replicating")
            // Sessions opened after the last rejoin: bulk both ways and one that pauses between steps.
            let sessions = [
                ("down-\(round)", try session("down-\(round)", download: 200_000_000, upload: 1_000_000)),
                ("up-\(round)", try session("up-\(round)", download: 1_000, upload: 100_000_000)),
                (
                    "idle-\(round)",
                    try session("idle-\(round)", download: 100_000, upload: 50_000, thinkMilliseconds: 200)
                ),
            ]
            Thread.sleep(forTimeInterval: 0.4)
            for (name, run) in sessions {
                XCTAssertTrue(run.process.isRunning, "round \(round): \(name) ended before the cut: \(run.output)")
            }
            try labScript(["fail", primary])
            let longest = finish(sessions, context: "round \(round), through the cut of \(primary)")
            stalls.append(longest)
            XCTAssertLessThanOrEqual(longest, 1_500, "round \(round): a session stalled longer than a takeover allows")
            // The survivor took the address over and serves as primary, alone, with what it inherited.
            let survivor = try waitFor(secondary, role: "primary", state: "alone")
            let counters = try XCTUnwrap(survivor["counters"] as? [String: Any])
            XCTAssertGreaterThan(
                counters["inheritedTranslatedOut"] as? Int ?? 0,
                0,
                "round \(round): the survivor translated nothing for its inherited connections"
            )
            // The cut host comes back as after a reboot and rejoins as the secondary.
            try labScript(["revive", primary])
            (primary, secondary) = (secondary, primary)
            print("rejoin round=\(round) longest_stall_ms=\(longest)")
        }
        // The last rejoin protects again: a session through it ends right.
        try waitFor(primary, role: "primary", state: "replicating")
        let last = try session("after", download: 10_000_000, upload: 1_000_000)
        XCTAssertTrue(last.wait(timeout: .seconds(60)))
        XCTAssertEqual(last.lastLineFields["ok"], "1", "the session after the last rejoin: \(last.output)")
        print("rejoin rounds=\(rounds) stalls_ms=\(stalls.map { String(format: "%.0f", $0) }.joined(separator: ","))")
    }
}
