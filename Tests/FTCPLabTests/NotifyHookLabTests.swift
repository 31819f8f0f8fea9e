import Foundation
import XCTest

/// `--notify` on the lab: both bridges run an operator's script with keepalived's arguments;
/// the script sees each node become MASTER or BACKUP, and the roles swap at a switchover.
final class NotifyHookLabTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }
    private let directory = "/tmp/ftcp-notify-lab-\(getpid())"
    private var script: String { "\(directory)/notify.sh" }
    private var calls: String { "\(directory)/calls" }
    override var extraBridgeArguments: String? { "--notify \(script)" }

    override func setUpWithError() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "#!/bin/sh\necho \"$FTCP_ADDRESS $1 $2 $3 $4 $FTCP_STATE\" >> \(calls)\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func lines() -> [String] {
        ((try? String(contentsOfFile: calls, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    private func waitForLine(_ text: String, after count: Int = 0) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if lines().dropFirst(count).contains(where: { $0.hasPrefix(text) }) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func testKeepalivedNotifyCallsFollowTheRoles() throws {
        XCTAssertTrue(waitForLine("10.80.0.1 INSTANCE ftcp MASTER 100 replicating"), "calls: \(lines())")
        XCTAssertTrue(waitForLine("10.80.0.2 INSTANCE ftcp BACKUP 50 replicating"), "calls: \(lines())")
        let before = lines().count
        let lab = try requireLab()
        let (status, run) = try lab.run(
            "primary",
            "switchover",
            [
                "\(binaries)/ftcp-bridge", "switchover", "--control", "/run/ftcp-lab/primary.sock",
            ]
        )
        XCTAssertEqual(status, 0, run.output)
        XCTAssertTrue(waitForLine("10.80.0.2 INSTANCE ftcp MASTER 100", after: before), "calls: \(lines())")
        XCTAssertTrue(waitForLine("10.80.0.1 INSTANCE ftcp BACKUP 50", after: before), "calls: \(lines())")
        // A bridge process killed: its guardian says FAULT.
        let killed = try lab.labScriptResult(["kill", "primary", "bridge"], environment: labEnvironment)
        XCTAssertEqual(killed.status, 0, killed.output)
        XCTAssertTrue(waitForLine("10.80.0.1 INSTANCE ftcp FAULT 50 fault", after: before), "calls: \(lines())")
    }
}
