import Foundation
import Glibc
import XCTest

/// The bridge as systemd runs it: the unit file passes `systemd-analyze verify`, and a bridge
/// started with a NOTIFY_SOCKET says READY=1 once it is in the path, then its state, and pings
/// the watchdog. (This machine's PID 1 is not systemd: the notify protocol is tested against a
/// real socket standing in for systemd's.)
final class SystemdTests: LabTestCase {
    func testUnitFileVerifies() throws {
        let lab = try requireLab()
        let bridge = try Lab.binary("ftcp-bridge", variable: "FTCP_BRIDGE")
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../deploy/systemd/ftcp-bridge@.service"
        ).standardized
        let unit = try String(contentsOf: source, encoding: .utf8).replacingOccurrences(
            of: "/usr/sbin/ftcp-bridge",
            with: bridge
        )
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ftcp-unit-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let instance = directory.appendingPathComponent("ftcp-bridge@primary.service")
        try unit.write(to: instance, atomically: true, encoding: .utf8)
        let verify = try lab.foreground(
            "client",
            "systemd-analyze",
            ["systemd-analyze", "verify", "--man=no", instance.path]
        )
        XCTAssertFalse(verify.errors.contains("ftcp-bridge@primary.service:"), "systemd-analyze: \(verify.errors)")
        _ = lab
    }

    func testBridgeNotifiesReadyStatusAndWatchdog() throws {
        let lab = try requireLab()
        let bridge = try Lab.binary("ftcp-bridge", variable: "FTCP_BRIDGE")
        let path = "/run/ftcp-notify-\(getpid()).sock"
        let listener = socket(AF_UNIX, Int32(2) | Int32(O_CLOEXEC), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in Array(path.utf8).enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(bound, 0, "bind: errno \(errno)")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("ftcp-notify-\(getpid()).key").path
        let keygen = try lab.foreground("client", "keygen", [bridge, "keygen"])
        FileManager.default.createFile(
            atPath: key,
            contents: Data(keygen.output.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        defer { try? FileManager.default.removeItem(atPath: key) }
        let run = try lab.background(
            "primary",
            "bridge",
            [
                "env", "NOTIFY_SOCKET=\(path)", "WATCHDOG_USEC=400000", bridge, "primary", "--interface", "eth0",
                "--address", "10.80.0.1", "--peer", "10.80.0.2", "--port", "9999", "--key-file", key,
                "--control", "/run/ftcp-notify-\(getpid())-control.sock",
            ]
        )
        defer { run.stop() }
        var messages: [String] = []
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline,
            !(messages.contains { $0.contains("WATCHDOG=1") }
                && messages.contains { $0.contains("STATUS=primary: alone") })
        {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(listener, $0.baseAddress, $0.count, 0) }
            if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
        }
        XCTAssertTrue(messages.first?.hasPrefix("READY=1\nSTATUS=primary: ") ?? false, "\(messages) \(run.errors)")
        XCTAssertTrue(
            messages.contains { $0.contains("STATUS=primary: alone") },
            "a primary with no secondary says so: \(messages)"
        )
        XCTAssertTrue(messages.contains("WATCHDOG=1"), "no watchdog ping: \(messages)")
        run.stop()
        XCTAssertTrue(run.wait(timeout: .seconds(5)))
        print("systemd notifications: \(messages.prefix(4).map { $0.replacingOccurrences(of: "\n", with: " | ") })")
    }
}
