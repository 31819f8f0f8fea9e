import Foundation
import XCTest

/// A test on the lab with ftcp running: the demo server on both servers and both bridges
/// (release build), started by `deploy/lab.sh ftcp start` before each test and torn down with
/// the lab after it, whatever the test did.
class RunningFTCPTestCase: LabTestCase {
    /// The directory holding ftcp-bridge, ftcp-demo-server and ftcp-labtool.
    var binaries = ""
    /// Service addresses of its own for both bridges (`--service-address`, several separated
    /// by commas), or nil for the older form (the primary's 10.80.0.1).
    class var serviceAddress: String? { nil }
    /// The address clients connect to (the first of several).
    var serviceAddress: String { Self.serviceAddress?.split(separator: ",").first.map(String.init) ?? "10.80.0.1" }
    /// More arguments for both bridges (`FTCP_BRIDGE_ARGS`), or nil.
    var extraBridgeArguments: String? { nil }
    /// What `lab.sh` needs to start or revive the bridges as this test runs them.
    var labEnvironment: [String: String] {
        var environment = ["FTCP_BIN": binaries]
        if let address = Self.serviceAddress { environment["FTCP_SERVICE_ADDRESS"] = address }
        if let arguments = extraBridgeArguments { environment["FTCP_BRIDGE_ARGS"] = arguments }
        return environment
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        let lab = try requireLab()
        do {
            binaries = (try Lab.binary("ftcp-bridge", variable: "FTCP_BRIDGE") as NSString).deletingLastPathComponent
            _ = try Lab.binary("ftcp-demo-server", variable: "FTCP_DEMO_SERVER")
        } catch {
            XCTFail("\(error)")
            throw error
        }
        let start = try lab.labScriptResult(["ftcp", "start"], environment: labEnvironment)
        guard start.status == 0 else {
            XCTFail("lab.sh ftcp start failed: \(start.output)")
            throw LabError("ftcp start failed")
        }
    }

    override func tearDown() {
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            // What the bridges said is the first thing to read about a failure; the lab's
            // run directory goes away with the teardown.
            for role in ["primary", "secondary"] {
                let log =
                    (try? String(contentsOfFile: "/run/ftcp-lab/bridge-\(role).log", encoding: .utf8)) ?? "(no log)"
                print("---- last lines of the \(role) bridge's log ----")
                print(log.split(separator: "\n").suffix(30).joined(separator: "\n"))
            }
        }
        super.tearDown()
    }

    /// Runs `deploy/lab.sh ARGUMENTS` as this test runs the bridges; a failure is a test failure.
    func labScript(_ arguments: [String]) throws {
        let result = try requireLab().labScriptResult(arguments, environment: labEnvironment)
        XCTAssertEqual(result.status, 0, "lab.sh \(arguments.joined(separator: " ")): \(result.output)")
    }

    /// A checked client session to the service address (or `address`), in the background: `download` bytes
    /// from the server, `upload` to it, `thinkMilliseconds` before each step, the client's
    /// sending side shut down after its requests with `halfClose`.
    func session(
        _ name: String,
        download: Int,
        upload: Int,
        thinkMilliseconds: Int = 0,
        halfClose: Bool = false,
        to address: String? = nil
    ) throws -> LabProcess {
        let lab = try requireLab()
        var arguments = [
            lab.labtool, "session", "--connect", "\(address ?? serviceAddress):9999", "--name", name,
            "--download", String(download), "--timeout-s", "90",
        ]
        if upload > 0 { arguments += ["--upload", String(upload)] }
        if thinkMilliseconds > 0 { arguments += ["--think-ms", String(thinkMilliseconds)] }
        if halfClose { arguments += ["--half-close"] }
        return try lab.background("client", name, arguments)
    }

    /// Waits for sessions to end (70 s each), checks that each ended right (every byte once,
    /// by the lab tool's SHA-256), and returns the longest stall any of them saw, either way.
    func finish(_ sessions: [(String, LabProcess)], context: String) -> Double {
        var longest = 0.0
        for (name, run) in sessions {
            XCTAssertTrue(run.wait(timeout: .seconds(70)), "\(context): session \(name) did not finish")
            let fields = run.lastLineFields
            XCTAssertEqual(fields["ok"], "1", "\(context): session \(name): \(run.output) \(run.errors)")
            longest = max(
                longest,
                Double(fields["longest_stall_ms"] ?? "") ?? 0,
                Double(fields["longest_upload_stall_ms"] ?? "") ?? 0
            )
        }
        return longest
    }

    /// Waits until `host`'s bridge plays `role` in `state` (up to 10 s); returns its status.
    @discardableResult
    func waitFor(_ host: String, role: String, state: String) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(10)
        var last: [String: Any] = [:]
        while Date() < deadline {
            if let current = try? status(host) {
                last = current
                if current["role"] as? String == role && current["state"] as? String == state { return current }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTFail(
            "\(host) did not reach \(role)/\(state) within 10 s: role \(last["role"] ?? "?"), state \(last["state"] ?? "?")"
        )
        throw LabError("\(host) not \(role)/\(state)")
    }

    /// A bridge's `status`, parsed.
    func status(_ role: String) throws -> [String: Any] {
        let lab = try requireLab()
        let run = try lab.foreground(
            role,
            "status-\(role)",
            [
                "\(binaries)/ftcp-bridge", "status", "--control", "/run/ftcp-lab/\(role).sock",
            ]
        )
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
    }
}
