import Foundation
import XCTest

/// The Debian package built by `deploy/package.sh` (`deploy/test.sh` builds it and passes its
/// path in `FTCP_PACKAGE`): installed with dpkg, `ftcp-bridge --help` and `check-config` run
/// from the installed paths, the unit and the man page in place; removed afterwards.
final class PackageTests: XCTestCase {
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testInstallRunRemove() throws {
        guard getuid() == 0 else { throw XCTSkip("installing a package needs root") }
        guard let package = ProcessInfo.processInfo.environment["FTCP_PACKAGE"] else {
            throw XCTSkip("FTCP_PACKAGE is not set: deploy/test.sh builds the package (deploy/package.sh) and sets it")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: package), "no package at \(package)")
        let install = try run(["/usr/bin/dpkg", "-i", package])
        XCTAssertEqual(install.status, 0, install.output)
        defer { _ = try? run(["/usr/bin/dpkg", "-r", "ftcp-bridge"]) }

        let help = try run(["/usr/sbin/ftcp-bridge", "--help"])
        XCTAssertEqual(help.status, 0, help.output)
        XCTAssertTrue(help.output.contains("switchover"), help.output)
        for path in [
            "/lib/systemd/system/ftcp-bridge@.service", "/usr/share/man/man8/ftcp-bridge.8.gz",
            "/usr/share/doc/ftcp-bridge/examples/ftcp.conf",
        ] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(path) not installed")
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ftcp-package-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try run(["/usr/sbin/ftcp-bridge", "keygen"])
        XCTAssertEqual(key.status, 0)
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: "\(directory)/ftcp.key",
                contents: Data(key.output.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        )
        try """
        interface = eth0
        address = 192.0.2.10
        peer = 192.0.2.11
        service-address = 192.0.2.100
        port = 21,179
        key-file = \(directory)/ftcp.key
        """.write(toFile: "\(directory)/ftcp.conf", atomically: true, encoding: .utf8)
        let check = try run(["/usr/sbin/ftcp-bridge", "check-config", "--config", "\(directory)/ftcp.conf"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.hasPrefix("ok: primary on eth0"), check.output)
        try "interface = eth0\nadress = 192.0.2.10\n".write(
            toFile: "\(directory)/bad.conf",
            atomically: true,
            encoding: .utf8
        )
        let bad = try run(["/usr/sbin/ftcp-bridge", "check-config", "--config", "\(directory)/bad.conf"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("bad.conf:2: unknown key 'adress' (did you mean 'address'?)"), bad.output)
    }
}
