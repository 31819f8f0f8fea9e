import Foundation
import XCTest

/// FTP through ftcp with Debian's vsftpd on both servers and curl on the client (nobody here wrote
/// either). In active mode the servers open each data connection from port 20 to the client
/// (protected with `--protect-outbound 20`, Koch et al. §7.2); in passive mode the client opens it
/// to the fixed passive port 30000. Each transfer, 100 MB down or up, has the primary cut off in
/// its middle; curl's next command then goes over the same control connection.
///
/// vsftpd is deterministic when both servers have the same files and settings and the passive
/// address is the service address (`pasv_address`, else each server would announce its own);
/// `connect_from_port_20` fixes the data connection's source port, so the two servers' SYNs have
/// the same 4-tuple. The settings are in ``configuration(root:)``.
final class FTPLabTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }
    override var extraBridgeArguments: String? { "--protect-outbound 20" }
    override var labEnvironment: [String: String] {
        var environment = super.labEnvironment
        environment["FTCP_PORTS"] = "9999,21,30000"
        return environment
    }

    static let workspace = "/tmp/ftcp-lab-ftp"
    static let size = 100_000_000
    var servers: [LabProcess] = []

    /// vsftpd's settings for one server: anonymous downloads from `root`, uploads into
    /// `root/upload`, the same on both servers.
    static func configuration(root: String) -> String {
        """
        listen=YES
        listen_ipv6=NO
        background=NO
        anonymous_enable=YES
        local_enable=NO
        no_anon_password=YES
        anon_root=\(root)
        write_enable=YES
        anon_upload_enable=YES
        anon_umask=022
        connect_from_port_20=YES
        port_enable=YES
        pasv_enable=YES
        pasv_min_port=30000
        pasv_max_port=30000
        pasv_address=10.80.0.100
        secure_chroot_dir=/var/run/vsftpd/empty
        seccomp_sandbox=NO
        xferlog_enable=NO
        dirmessage_enable=NO
        ftpd_banner=ftcp lab FTP
        """
    }

    private func shell(_ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw LabError("failed: \(command)") }
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard LabProcess.locate("vsftpd") != nil, LabProcess.locate("curl") != nil else {
            XCTFail("vsftpd and curl are needed (deploy/setup.sh installs them)")
            throw LabError("vsftpd or curl missing")
        }
        let workspace = Self.workspace
        try shell(
            """
            pkill -f "[v]sftpd \(workspace)/" 2>/dev/null; rm -rf \(workspace) && mkdir -p \(workspace)/client /var/run/vsftpd/empty \
            && head -c \(Self.size) /dev/urandom > \(workspace)/client/big.bin \
            && echo 'the next command, on the same control connection' > \(workspace)/client/small.txt
            """
        )
        for host in ["primary", "secondary"] {
            let root = "\(workspace)/\(host)"
            // The same files on both servers; uploads land in a directory only the ftp user writes.
            try shell(
                """
                mkdir -p \(root)/upload && chown ftp \(root)/upload && chmod 755 \(root) \
                && ln \(workspace)/client/big.bin \(root)/big.bin && cp \(workspace)/client/small.txt \(root)/small.txt
                """
            )
            let path = "\(workspace)/vsftpd-\(host).conf"
            try Self.configuration(root: root).write(toFile: path, atomically: true, encoding: .utf8)
            servers.append(try requireLab().background(host, "vsftpd-\(host)", ["vsftpd", path]))
        }
        try waitForFTP()
    }

    override func tearDown() {
        for server in servers { server.stop(grace: .milliseconds(500)) }
        // Its session processes outlive the listener.
        try? shell("pkill -f \"[v]sftpd \(Self.workspace)/\"; true")
        super.tearDown()
    }

    /// Waits until both vsftpd answer on port 21 (each namespace's own, before ftcp's address).
    private func waitForFTP() throws {
        let deadline = Date().addingTimeInterval(10)
        for host in ["primary", "secondary"] {
            while true {
                let (status, _) = try requireLab().run(host, "probe-\(host)", ["sh", "-c", "ss -ltn | grep -q ':21 '"])
                if status == 0 { break }
                guard Date() < deadline else { throw LabError("vsftpd did not listen on \(host)") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    private func sha256(_ path: String) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    /// Runs curl on the client with `arguments` in the background, cuts the primary off after
    /// `cutAfter` seconds (while the data connection replicates, checked), and waits for curl.
    private func transferThroughTheCut(_ name: String, _ arguments: [String], active: Bool) throws -> LabProcess {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let curl = try requireLab().background(
            "client",
            name,
            ["curl", "-sS", "-v", "--max-time", "60", "--limit-rate", "25M"] + (active ? ["--ftp-port", "-"] : [])
                + arguments
        )
        // Cut while the 100 MB data connection is replicating (at 25 MB/s it lasts 4 s).
        let deadline = Date().addingTimeInterval(10)
        var dataConnection: [String: Any]?
        while dataConnection == nil && Date() < deadline {
            let connections = (try? status("primary"))?["connections"] as? [[String: Any]] ?? []
            dataConnection = connections.first {
                $0["phase"] as? String == "replicating"
                    && ((active && $0["direction"] as? String == "outbound" && $0["serverPort"] as? Int == 20)
                        || (!active && $0["serverPort"] as? Int == 30000))
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertNotNil(dataConnection, "the data connection never replicated at the primary")
        Thread.sleep(forTimeInterval: 0.8)
        try labScript(["fail", "primary"])
        XCTAssertTrue(curl.wait(timeout: .seconds(60)), "curl did not finish")
        XCTAssertEqual(curl.process.terminationStatus, 0, "curl: \(curl.errors.suffix(6_000))")
        XCTAssertTrue(
            curl.errors.contains("Re-using existing connection") || curl.errors.contains("Reusing existing"),
            "curl's next command went over the same control connection"
        )
        try waitFor("secondary", role: "primary", state: "alone")
        return curl
    }

    private func download(active: Bool) throws {
        let out = "\(Self.workspace)/client/received-\(active ? "active" : "passive")"
        _ = try transferThroughTheCut(
            "curl-download",
            [
                "ftp://10.80.0.100/big.bin", "-o", "\(out).bin", "ftp://10.80.0.100/small.txt", "-o", "\(out).txt",
            ],
            active: active
        )
        XCTAssertEqual(try sha256("\(out).bin"), try sha256("\(Self.workspace)/client/big.bin"), "100 MB byte-exact")
        XCTAssertEqual(try sha256("\(out).txt"), try sha256("\(Self.workspace)/client/small.txt"))
    }

    private func upload(active: Bool) throws {
        _ = try transferThroughTheCut(
            "curl-upload",
            ["-T", "{big.bin,small.txt}", "ftp://10.80.0.100/upload/"].map {
                $0.hasPrefix("{") ? "\(Self.workspace)/client/\($0)" : $0
            },
            active: active
        )
        // The survivor's copy, written by its vsftpd from the client's bytes through the takeover.
        let received = "\(Self.workspace)/secondary/upload"
        XCTAssertEqual(try sha256("\(received)/big.bin"), try sha256("\(Self.workspace)/client/big.bin"))
        XCTAssertEqual(try sha256("\(received)/small.txt"), try sha256("\(Self.workspace)/client/small.txt"))
    }

    func testActiveModeDownloadThroughTheCutOfThePrimary() throws { try download(active: true) }
    func testActiveModeUploadThroughTheCutOfThePrimary() throws { try upload(active: true) }
    func testPassiveModeDownloadThroughTheCutOfThePrimary() throws { try download(active: false) }
    func testPassiveModeUploadThroughTheCutOfThePrimary() throws { try upload(active: false) }
}
