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
final class FTPLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [21, 30000] }
    override var extraBridgeArguments: String? { "--protect-outbound 20" }
    static let size = 100_000_000

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

    override func setUpWithError() throws {
        try super.setUpWithError()
        let workspace = self.workspace
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
            try Self.configuration(root: root).write(
                toFile: "\(workspace)/vsftpd-\(host).conf",
                atomically: true,
                encoding: .utf8
            )
        }
        try startOnBothServers("vsftpd", port: 21) { host in ["vsftpd", "\(workspace)/vsftpd-\(host).conf"] }
    }

    override func tearDown() {
        // Its session processes outlive the listener.
        try? shell("pkill -f \"[v]sftpd \(workspace)/\"; true")
        super.tearDown()
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
        let out = "\(workspace)/client/received-\(active ? "active" : "passive")"
        _ = try transferThroughTheCut(
            "curl-download",
            [
                "ftp://10.80.0.100/big.bin", "-o", "\(out).bin", "ftp://10.80.0.100/small.txt", "-o", "\(out).txt",
            ],
            active: active
        )
        XCTAssertEqual(try sha256("\(out).bin"), try sha256("\(workspace)/client/big.bin"), "100 MB byte-exact")
        XCTAssertEqual(try sha256("\(out).txt"), try sha256("\(workspace)/client/small.txt"))
    }

    private func upload(active: Bool) throws {
        _ = try transferThroughTheCut(
            "curl-upload",
            ["-T", "{big.bin,small.txt}", "ftp://10.80.0.100/upload/"].map {
                $0.hasPrefix("{") ? "\(workspace)/client/\($0)" : $0
            },
            active: active
        )
        // The survivor's copy, written by its vsftpd from the client's bytes through the takeover.
        let received = "\(workspace)/secondary/upload"
        XCTAssertEqual(try sha256("\(received)/big.bin"), try sha256("\(workspace)/client/big.bin"))
        XCTAssertEqual(try sha256("\(received)/small.txt"), try sha256("\(workspace)/client/small.txt"))
    }

    func testActiveModeDownloadThroughTheCutOfThePrimary() throws { try download(active: true) }
    func testActiveModeUploadThroughTheCutOfThePrimary() throws { try upload(active: true) }
    func testPassiveModeDownloadThroughTheCutOfThePrimary() throws { try download(active: false) }
    func testPassiveModeUploadThroughTheCutOfThePrimary() throws { try upload(active: false) }
}
