import Foundation
import XCTest

/// Real servers from Debian's packages on both servers, their real clients on the client's host
/// (the compatibility suite, README's table). Each runs through ftcp, with the primary cut off in
/// the middle where the row says so.
class ApplicationLabTestCase: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100" }
    /// Ports the application serves, protected beside the demo server's 9999.
    class var applicationPorts: [Int] { [] }
    override var labEnvironment: [String: String] {
        var environment = super.labEnvironment
        environment["FTCP_PORTS"] = ([9999] + Self.applicationPorts).map(String.init).joined(separator: ",")
        return environment
    }
    var servers: [LabProcess] = []
    /// How many times the CI's amounts each test moves (`FTCP_APP_SCALE`; `deploy/compat.sh`
    /// runs the suite at 3 and more): bytes, requests, seconds.
    let scale = max(1, Int(ProcessInfo.processInfo.environment["FTCP_APP_SCALE"] ?? "") ?? 1)
    /// Files of this test (configuration, content), removed with it.
    var workspace: String { "/tmp/ftcp-lab-\(String(describing: type(of: self)))" }

    func shell(_ command: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw LabError("failed: \(command)") }
    }

    /// Starts `arguments` on both servers and waits until each listens on `port`.
    func startOnBothServers(_ name: String, port: Int, _ arguments: (String) -> [String]) throws {
        for host in ["primary", "secondary"] {
            servers.append(try requireLab().background(host, "\(name)-\(host)", arguments(host)))
        }
        let deadline = Date().addingTimeInterval(10)
        for host in ["primary", "secondary"] {
            while true {
                let (status, _) = try requireLab().run(
                    host,
                    "probe-\(host)",
                    ["sh", "-c", "ss -ltn | grep -q ':\(port) '"]
                )
                if status == 0 { break }
                guard Date() < deadline else {
                    XCTFail("\(name) did not listen on \(host): \(servers.map(\.errors))")
                    throw LabError("\(name) not listening")
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    override func tearDown() {
        for server in servers { server.stop(grace: .milliseconds(500)) }
        try? shell("rm -rf \(workspace)")
        super.tearDown()
    }

    /// The primary's connections to `port`, closed ones included (their counts stay 60 s).
    func primaryConnections(port: Int) throws -> [[String: Any]] {
        let connections = try XCTUnwrap(try status("primary")["connections"] as? [[String: Any]])
        return connections.filter { $0["serverPort"] as? Int == port }
    }

    func sha256(_ path: String) throws -> String {
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
}

/// nginx (Debian's nginx-light) with curl. Every response carries a `Date` header: one that
/// straddles a second on the two servers differs in a few bytes, which `--divergence
/// 80=same-length` tolerates (port 81, the same server, stays strict and shows the difference).
final class NginxLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [80, 81] }
    override var extraBridgeArguments: String? { "--divergence 80=same-length" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try shell(
            """
            rm -rf \(workspace) && mkdir -p \(workspace)/www && head -c \(100_000_000 * scale) /dev/urandom > \(workspace)/www/big.bin \
            && echo 'hello from both servers' > \(workspace)/www/small.txt
            """
        )
        for host in ["primary", "secondary"] {
            let configuration = """
                daemon off;
                master_process off;
                pid \(workspace)/nginx-\(host).pid;
                error_log \(workspace)/error-\(host).log;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    keepalive_requests 100000;
                    client_body_temp_path \(workspace)/body-\(host);
                    server {
                        listen 80;
                        listen 81;
                        root \(workspace)/www;
                    }
                }
                """
            try configuration.write(toFile: "\(workspace)/nginx-\(host).conf", atomically: true, encoding: .utf8)
        }
        try startOnBothServers("nginx", port: 80) { host in ["nginx", "-c", "\(workspace)/nginx-\(host).conf"] }
    }

    /// Keep-alive requests over one connection at a time until one of `port`'s connections shows
    /// `condition`; every response must be a 200. With the secondary's link 20 ms late, its
    /// response to a request comes 20 ms after the primary's, so about one second boundary in two
    /// falls between them.
    private func requestsUntil(port: Int, _ condition: ([String: Any]) -> Bool) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(40)
        var round = 0
        while Date() < deadline {
            round += 1
            let (status, curl) = try requireLab().run(
                "client",
                "curl-\(port)-\(round)",
                [
                    "curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}\\n",
                    "http://10.80.0.100:\(port)/small.txt?[1-40]",
                ],
                timeout: .seconds(30)
            )
            XCTAssertEqual(status, 0, "curl: \(curl.errors)")
            let codes = curl.output.split(separator: "\n")
            XCTAssertEqual(codes.count, 40)
            XCTAssertTrue(codes.allSatisfy { $0 == "200" }, "\(curl.output)")
            if let found = try primaryConnections(port: port).first(where: condition) { return found }
        }
        return nil
    }

    func testDateHeadersStraddlingASecondStayProtectedWithSameLength() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        try requireLab().impair("secondary", "delay 20ms")
        let tolerated = try requestsUntil(port: 80) { ($0["tolerated"] as? Int ?? 0) > 0 }
        XCTAssertNotNil(tolerated, "no Date header straddled a second in 40 s")
        XCTAssertEqual(tolerated?["divergences"] as? Int, 0, "\(tolerated ?? [:])")
        XCTAssertNotEqual(tolerated?["phase"] as? String, "primary-only", "\(tolerated ?? [:])")
        // The same server on a strict port: the same difference ends the protection.
        let diverged = try requestsUntil(port: 81) { ($0["divergences"] as? Int ?? 0) > 0 }
        XCTAssertNotNil(diverged, "no Date header straddled a second on the strict port in 40 s")
    }

    func testHundredMegabyteDownloadThroughTheCutOfThePrimary() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let out = "\(workspace)/received.bin"
        let curl = try requireLab().background(
            "client",
            "curl-download",
            ["curl", "-sS", "--max-time", "60", "--limit-rate", "25M", "-o", out, "http://10.80.0.100/big.bin"]
        )
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertTrue(try primaryConnections(port: 80).contains { $0["phase"] as? String == "replicating" })
        XCTAssertTrue(curl.process.isRunning, "the cut must fall inside the download")
        try labScript(["fail", "primary"])
        XCTAssertTrue(curl.wait(timeout: .seconds(60)), "curl did not finish")
        XCTAssertEqual(curl.process.terminationStatus, 0, "curl: \(curl.errors)")
        XCTAssertEqual(try sha256(out), try sha256("\(workspace)/www/big.bin"), "100 MB byte-exact")
    }
}

/// redis-server with redis-benchmark: 20 connections of pipelined SETs through the cut of the
/// primary; the survivor's redis has processed every one.
final class RedisLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [6379] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try shell("rm -rf \(workspace) && mkdir -p \(workspace)/primary \(workspace)/secondary")
        try startOnBothServers("redis", port: 6379) { host in
            [
                "redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "",
                "--appendonly", "no", "--dir", "\(workspace)/\(host)", "--daemonize", "no",
            ]
        }
    }

    func testPipelinedSetsThroughTheCutOfThePrimary() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        // About 3 s through ftcp here (357,000 pipelined SETs a second in the benchmark): the
        // cut, 1 s in, surely falls inside it (400,000 could end in 1.1 s).
        let requests = 1_200_000 * scale
        let benchmark = try requireLab().background(
            "client",
            "redis-benchmark",
            [
                "redis-benchmark", "-h", "10.80.0.100", "-p", "6379", "-c", "20", "-n", String(requests), "-P", "16",
                "-t", "set", "-r", "1000000", "-q",
            ]
        )
        Thread.sleep(forTimeInterval: 1.0)
        let protected = try primaryConnections(port: 6379).filter { $0["phase"] as? String == "replicating" }
        XCTAssertEqual(protected.count, 20, "redis-benchmark's 20 connections replicate: \(protected.count)")
        XCTAssertTrue(benchmark.process.isRunning, "the cut must fall inside the benchmark: \(benchmark.output)")
        try labScript(["fail", "primary"])
        XCTAssertTrue(benchmark.wait(timeout: .seconds(90)), "redis-benchmark did not finish")
        XCTAssertEqual(benchmark.process.terminationStatus, 0, "\(benchmark.output) \(benchmark.errors)")
        XCTAssertFalse(benchmark.errors.contains("Error"), benchmark.errors)
        let (status, info) = try requireLab().run(
            "client",
            "redis-info",
            ["redis-cli", "-h", "10.80.0.100", "INFO", "stats"]
        )
        XCTAssertEqual(status, 0, info.errors)
        let processed =
            info.output.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_commands_processed:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        XCTAssertGreaterThanOrEqual(processed, requests, "the survivor's redis processed every SET: \(info.output)")
    }
}

/// memcached with memcslap (libmemcached-tools): 20 connections of SETs through the cut of the
/// primary; the survivor's memcached counts every one.
final class MemcachedLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [11211] }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try startOnBothServers("memcached", port: 11211) { _ in
            ["memcached", "-u", "nobody", "-l", "0.0.0.0", "-p", "11211", "-U", "0", "-m", "256", "-c", "1024"]
        }
    }

    func testSetsThroughTheCutOfThePrimary() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        // Only SETs: a GET's answer would depend on how the two servers interleave the 20
        // connections, which nothing makes the same (README: what cannot be protected).
        let load = try requireLab().background(
            "client",
            "memcslap",
            [
                "memcslap", "--servers=10.80.0.100:11211", "--concurrency=20", "--execute-number=\(10_000 * scale)",
                "--test=set",
            ]
        )
        Thread.sleep(forTimeInterval: 1.0)
        XCTAssertTrue(load.process.isRunning, "the cut must fall inside the load: \(load.output)")
        XCTAssertGreaterThan(
            try primaryConnections(port: 11211).filter { $0["phase"] as? String == "replicating" }.count,
            0
        )
        try labScript(["fail", "primary"])
        XCTAssertTrue(load.wait(timeout: .seconds(90)), "memcslap did not finish")
        XCTAssertEqual(load.process.terminationStatus, 0, "\(load.output) \(load.errors)")
        let (status, stats) = try requireLab().run("client", "memcstat", ["memcstat", "--servers=10.80.0.100:11211"])
        XCTAssertEqual(status, 0, stats.errors)
        let sets =
            stats.output.split(whereSeparator: \.isNewline).first { $0.contains("cmd_set:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        XCTAssertGreaterThanOrEqual(
            sets,
            20 * 10_000 * scale,
            "the survivor's memcached stored every SET: \(stats.output)"
        )
    }
}

/// PostgreSQL 15 with pgbench, trust authentication. BackendKeyData carries each server's own
/// process id and secret key (8 bytes that differ, of the same length): `--divergence
/// 5432=same-length` keeps the connection protected, and `pgbench -c 1` runs through the cut of
/// the primary with no failed transaction.
final class PostgresLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [5432] }
    override var extraBridgeArguments: String? { "--divergence 5432=same-length" }
    static let binaries = "/usr/lib/postgresql/15/bin"

    override func setUpWithError() throws {
        try super.setUpWithError()
        let workspace = self.workspace
        for host in ["primary", "secondary"] {
            let data = "\(workspace)/\(host)"
            try shell(
                """
                pkill -f "[p]ostgres -D \(data)" ; mkdir -p \(data) && chown -R postgres \(workspace) \
                && runuser -u postgres -- \(Self.binaries)/initdb -D \(data) -A trust -U postgres --no-sync >/dev/null \
                && echo 'host all all 0.0.0.0/0 trust' >> \(data)/pg_hba.conf
                """
            )
        }
        try startOnBothServers("postgres", port: 5432) { host in
            [
                "runuser", "-u", "postgres", "--", "\(Self.binaries)/postgres", "-D", "\(workspace)/\(host)", "-c",
                "listen_addresses=*", "-c", "unix_socket_directories=\(workspace)/\(host)", "-c", "fsync=off",
                "-c", "synchronous_commit=off",
            ]
        }
    }

    override func tearDown() {
        try? shell("pkill -f \"[p]ostgres -D \(workspace)/\"; true")
        super.tearDown()
    }

    func testPgbenchThroughTheCutOfThePrimary() throws {
        let lab = try requireLab()
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let (initialized, initialize) = try lab.run(
            "client",
            "pgbench-init",
            ["\(Self.binaries)/pgbench", "-i", "-s", "1", "-h", "10.80.0.100", "-U", "postgres", "postgres"],
            timeout: .seconds(120)
        )
        XCTAssertEqual(initialized, 0, "pgbench -i: \(initialize.output) \(initialize.errors)")
        let run = try lab.background(
            "client",
            "pgbench",
            [
                "\(Self.binaries)/pgbench", "-c", "1", "-T", String(8 * scale), "-h", "10.80.0.100", "-U", "postgres",
                "postgres",
            ]
        )
        Thread.sleep(forTimeInterval: 2.5)
        let all = try primaryConnections(port: 5432)
        let sessions = all.filter { $0["phase"] as? String == "replicating" }
        XCTAssertEqual(sessions.count, 1, "pgbench's session replicates: \(all)")
        XCTAssertGreaterThan(sessions.first?["tolerated"] as? Int ?? 0, 0, "BackendKeyData differs between the servers")
        try labScript(["fail", "primary"])
        XCTAssertTrue(run.wait(timeout: .seconds(60)), "pgbench did not finish")
        XCTAssertEqual(run.process.terminationStatus, 0, "pgbench: \(run.output) \(run.errors)")
        XCTAssertTrue(run.output.contains("number of failed transactions: 0"), run.output)
        XCTAssertFalse(run.errors.contains("aborted"), run.errors)
        print("pgbench through the cut: \(run.output.split(separator: "\n").filter { $0.contains("transactions") })")
    }
}

/// A BGP session (bird2 on both servers, passive, one router id: the service address) with bird2
/// on the client's host as the router, which opens it. Routes go both ways; the primary is cut
/// off and the session stays Established, the router keeps the servers' routes, and a route it
/// announces after the cut reaches the survivor.
final class BGPLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [179] }

    private func configuration(router: Bool, host: String) -> String {
        let common = """
            log "\(workspace)/bird-\(host).log" all;
            protocol device { }
            """
        if router {
            return common + """

                router id 10.80.0.10;
                protocol static announced { ipv4; route 198.18.0.0/24 blackhole; }
                protocol static late { disabled; ipv4; route 198.18.1.0/24 blackhole; }
                protocol bgp servers {
                    local 10.80.0.10 as 65000;
                    neighbor 10.80.0.100 as 65001;
                    # Its first attempt 1 s after start, not BIRD's default 5 s.
                    hold time 30; keepalive time 3; connect retry time 1; connect delay time 1;
                    ipv4 { import all; export where proto = "announced" || proto = "late"; };
                }
                """
        }
        return common + """

            router id 10.80.0.100;
            protocol static service { ipv4; route 203.0.113.0/24 blackhole; }
            protocol bgp uplink {
                local as 65001;
                neighbor 10.80.0.10 as 65000;
                passive on;
                hold time 30; keepalive time 3;
                # The next hop each server would put in its updates is its own end of the session
                # (the service address on the primary, its own address on the secondary): the same
                # for both, so the bytes are.
                ipv4 { import all; export where proto = "service"; next hop address 10.80.0.100; };
            }
            """
    }

    /// birdc's answer; `required`: a failure (no bird there yet, say) fails the test.
    private func birdc(_ host: String, _ command: [String], required: Bool = true) throws -> String {
        let (status, run) = try requireLab().run(
            host,
            "birdc-\(host)",
            ["birdc", "-s", "\(workspace)/bird-\(host).ctl"] + command
        )
        if required {
            XCTAssertEqual(status, 0, "birdc \(command.joined(separator: " ")) on \(host): \(run.output) \(run.errors)")
        }
        return run.output
    }

    /// Waits (up to `seconds`) until `host`'s birdc output for `command` contains `text`.
    private func waitFor(_ host: String, _ command: [String], contains text: String, seconds: Double = 15) throws
        -> Bool
    {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try birdc(host, command, required: false).contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try shell("rm -rf \(workspace) && mkdir -p \(workspace)")
        for (host, router) in [("primary", false), ("secondary", false), ("client", true)] {
            try configuration(router: router, host: host).write(
                toFile: "\(workspace)/bird-\(host).conf",
                atomically: true,
                encoding: .utf8
            )
        }
        try startOnBothServers("bird", port: 179) { host in
            ["bird", "-f", "-c", "\(workspace)/bird-\(host).conf", "-s", "\(workspace)/bird-\(host).ctl"]
        }
    }

    func testASessionThroughTheCutOfThePrimary() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        servers.append(
            try requireLab().background(
                "client",
                "bird-router",
                ["bird", "-f", "-c", "\(workspace)/bird-client.conf", "-s", "\(workspace)/bird-client.ctl"]
            )
        )
        let established = try waitFor("client", ["show", "protocols", "servers"], contains: "Established")
        let routerView = try birdc("client", ["show", "protocols", "all", "servers"])
        XCTAssertTrue(established, "the router's session never came up: \(routerView)")
        XCTAssertTrue(try waitFor("client", ["show", "route", "203.0.113.0/24"], contains: "203.0.113.0/24"))
        XCTAssertTrue(try waitFor("secondary", ["show", "route", "198.18.0.0/24"], contains: "198.18.0.0/24"))
        // Keepalives every 3 s from both servers, each on its own timer: a few rounds merge.
        Thread.sleep(forTimeInterval: 7)
        let before = try birdc("client", ["show", "protocols", "servers"])
        let session = try primaryConnections(port: 179)
        XCTAssertEqual(session.first?["phase"] as? String, "replicating", "the session is protected: \(session)")
        XCTAssertEqual(session.first?["divergences"] as? Int, 0)

        try labScript(["fail", "primary"])
        try waitFor("secondary", role: "primary", state: "alone")
        // Through the hold time (30 s would expire without keepalives; 10 s shows they flow).
        Thread.sleep(forTimeInterval: 10)
        let router = try birdc("client", ["show", "protocols", "all", "servers"])
        XCTAssertTrue(router.contains("Established"), "the router's session ended: \(router)")
        XCTAssertFalse(router.contains("Hold timer expired"), router)
        XCTAssertTrue(try birdc("client", ["show", "route", "203.0.113.0/24"]).contains("203.0.113.0/24"))
        // An update from the router after the cut reaches the survivor.
        _ = try birdc("client", ["enable", "late"])
        XCTAssertTrue(
            try waitFor("secondary", ["show", "route", "198.18.1.0/24"], contains: "198.18.1.0/24"),
            "the router's new route did not reach the survivor"
        )
        // The same session: its state line (with the time it came up) has not changed.
        let after = try birdc("client", ["show", "protocols", "servers"])
        let line = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("servers") } }
        XCTAssertEqual(line(after), line(before), "the session restarted")
    }
}

/// Samba with smbclient: what cannot be protected, shown. Each smbd gives a session a random
/// SessionId that the client echoes in every later request; the secondary's smbd does not know
/// the primary's, so its answers differ in content and length even with `--divergence
/// 445=same-length`, and the connection is the primary's alone from there (the client is served
/// as by one server).
final class SambaLabTests: ApplicationLabTestCase {
    override class var applicationPorts: [Int] { [445] }
    override var extraBridgeArguments: String? { "--divergence 445=same-length" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try shell(
            """
            rm -rf \(workspace) && mkdir -p \(workspace)/share && head -c 2000000 /dev/urandom > \(workspace)/share/file.bin
            """
        )
        for host in ["primary", "secondary"] {
            let root = "\(workspace)/\(host)"
            try shell("mkdir -p \(root)/run \(root)/lock \(root)/state \(root)/cache \(root)/private \(root)/ncalrpc")
            let configuration = """
                [global]
                server role = standalone server
                map to guest = Bad User
                guest account = nobody
                disable netbios = yes
                smb ports = 445
                log file = \(root)/log
                pid directory = \(root)/run
                lock directory = \(root)/lock
                state directory = \(root)/state
                cache directory = \(root)/cache
                private dir = \(root)/private
                ncalrpc dir = \(root)/ncalrpc
                load printers = no
                printcap name = /dev/null
                disable spoolss = yes
                server min protocol = SMB2
                [share]
                path = \(workspace)/share
                guest ok = yes
                read only = yes
                """
            try configuration.write(toFile: "\(root)/smb.conf", atomically: true, encoding: .utf8)
        }
        try startOnBothServers("smbd", port: 445) { host in
            ["smbd", "--foreground", "--no-process-group", "-s", "\(workspace)/\(host)/smb.conf"]
        }
    }

    override func tearDown() {
        try? shell("pkill -f \"[s]mbd --foreground --no-process-group -s \(workspace)/\"; true")
        super.tearDown()
    }

    func testASessionIsServedButNotProtected() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let received = "\(workspace)/received.bin"
        let (status, client) = try requireLab().run(
            "client",
            "smbclient",
            ["smbclient", "//10.80.0.100/share", "-N", "-m", "SMB3", "-c", "get file.bin \(received)"],
            timeout: .seconds(60)
        )
        XCTAssertEqual(status, 0, "smbclient: \(client.output) \(client.errors)")
        XCTAssertEqual(try sha256(received), try sha256("\(workspace)/share/file.bin"), "served byte-exact")
        let sessions = try primaryConnections(port: 445)
        XCTAssertEqual(sessions.count, 1, "\(sessions)")
        XCTAssertGreaterThan(
            sessions.first?["divergences"] as? Int ?? 0,
            0,
            "the session diverged (server-chosen session ids): \(sessions)"
        )
    }
}
