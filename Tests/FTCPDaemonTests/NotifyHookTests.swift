import Foundation
import Logging
import Testing

@testable import FTCPDaemon

@Suite("--notify: keepalived's notify convention")
struct NotifyHookTests {
    @Test(
        "roles and states map to keepalived's words",
        arguments: [
            ("primary", "replicating", "MASTER"), ("primary", "alone", "MASTER"),
            ("primary", "waiting-for-secondary", "MASTER"),
            ("secondary", "replicating", "BACKUP"), ("secondary", "checking-address", "BACKUP"),
            ("secondary", "promoted", "MASTER"), ("primary", "fault", "FAULT"), ("secondary", "fault", "FAULT"),
            ("primary", "stop", "STOP"),
        ]
    )
    func mapping(role: String, state: String, expected: String) {
        #expect(NotifyHook.keepalivedState(role: role, state: state) == expected)
    }

    @Test("a real program gets the arguments and the environment, in order, once per change")
    func runsTheProgram() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ftcp-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("notify.sh").path
        let output = directory.appendingPathComponent("calls").path
        try "#!/bin/sh\necho \"$1 $2 $3 $4 $FTCP_ROLE $FTCP_STATE $FTCP_SERVICE_ADDRESS\" >> \(output)\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let hook = NotifyHook(
            program: script,
            logger: Logger(label: "test"),
            serviceAddress: "10.80.0.100",
            ownAddress: "10.80.0.1"
        )
        hook.stateChanged(role: "primary", state: "waiting-for-secondary", reason: "started")
        hook.stateChanged(role: "primary", state: "waiting-for-secondary", reason: "again")
        hook.stateChanged(role: "primary", state: "replicating", reason: "secondary heard")
        hook.stateChanged(role: "secondary", state: "replicating", reason: "switchover")
        hook.stateChanged(role: "secondary", state: "stop", reason: "stopped")
        hook.flush()
        let calls = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(
            calls == [
                "INSTANCE ftcp MASTER 100 primary waiting-for-secondary 10.80.0.100",
                "INSTANCE ftcp MASTER 100 primary replicating 10.80.0.100",
                "INSTANCE ftcp BACKUP 50 secondary replicating 10.80.0.100",
                "INSTANCE ftcp STOP 50 secondary stop 10.80.0.100",
            ]
        )
    }
}
