import Foundation
import XCTest

/// The fault matrix of "never less available than one server": one single failure per test,
/// injected on the lab while sessions are open in every phase — bulk transfers both ways,
/// idle sessions that pause between steps, short sessions opening and closing around the
/// fault — and new sessions opened during and after it. From the client's side every row
/// checks: every session ends right (each byte once, checked by the lab tool's SHA-256), no
/// server RST reaches an open connection, new connections are accepted, and the longest
/// stall stays under the row's bound.
///
/// `FTCP_FAULT_MATRIX_RESULTS=FILE` appends one JSON line per row (name, stall) to FILE;
/// `deploy/fault-matrix.sh N` runs the matrix N times and summarises it.
final class FaultMatrixTests: RunningFTCPTestCase {
    /// What one row did, for its assertions and the summary.
    struct RowResult {
        var sessions = 0
        var longestStallMilliseconds = 0.0
        var spanningTheFault = 0
    }

    /// Runs one row: sessions in every phase, `inject` at about 0.4 s, new sessions while the
    /// fault lasts, `recover` (if any), new sessions after it; then the client-side checks.
    @discardableResult
    private func row(
        _ name: String,
        stallBoundMilliseconds: Double,
        inject: () throws -> Void,
        duringFault: Double = 0.3,
        recover: (() throws -> Void)? = nil
    ) throws -> RowResult {
        let lab = try requireLab()
        let capture = try lab.startCapture(on: "client", filter: "tcp port 9999", snapLength: 96)
        var sessions: [(name: String, run: LabProcess)] = []
        func start(_ name: String, _ make: () throws -> LabProcess) throws { sessions.append((name, try make())) }

        // Bulk both ways, and idle sessions that pause 300 ms before each step.
        try start("bulk-down") { try session("bulk-down", download: 300_000_000, upload: 1_000_000) }
        try start("bulk-up") { try session("bulk-up", download: 1_000, upload: 200_000_000) }
        for index in 0..<3 {
            try start("idle-\(index)") {
                try session("idle-\(index)", download: 100_000, upload: 50_000, thinkMilliseconds: 300)
            }
        }
        // Short sessions opening, exchanging and closing around the fault, 20 ms apart.
        var cutWindow = (start: 0.0, end: 0.0)
        for index in 0..<16 {
            if index == 8 {
                cutWindow.start = Date().timeIntervalSince1970
                try inject()
                cutWindow.end = Date().timeIntervalSince1970
            }
            try start("phase-\(index)") {
                try session(
                    "phase-\(index)",
                    download: 100_000 * (index % 5 + 1),
                    upload: 50_000,
                    thinkMilliseconds: 40,
                    halfClose: index % 2 == 0
                )
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        // New connections while the fault lasts.
        let faultEnds = Date().addingTimeInterval(duringFault)
        var index = 0
        while Date() < faultEnds || index < 2 {
            try start("during-\(index)") { try session("during-\(index)", download: 200_000, upload: 20_000) }
            index += 1
            Thread.sleep(forTimeInterval: 0.1)
        }
        try recover?()
        for index in 0..<3 {
            try start("after-\(index)") { try session("after-\(index)", download: 200_000, upload: 20_000) }
        }

        var result = RowResult()
        for (sessionName, run) in sessions {
            XCTAssertTrue(run.wait(timeout: .seconds(100)), "\(name): session \(sessionName) did not finish")
            let fields = run.lastLineFields
            XCTAssertEqual(fields["ok"], "1", "\(name): session \(sessionName): \(run.output) \(run.errors)")
            let stall = max(
                Double(fields["longest_stall_ms"] ?? "") ?? 0,
                Double(fields["longest_upload_stall_ms"] ?? "") ?? 0
            )
            result.longestStallMilliseconds = max(result.longestStallMilliseconds, stall)
            if stall > stallBoundMilliseconds {
                print("\(name): session \(sessionName) stalled \(stall) ms: \(fields)")
            }
            result.sessions += 1
        }
        let connections = ClientConnections(try capture.finish().ipv4Packets, serverPort: 9999)
        XCTAssertEqual(
            connections.resetsWhileOpen.count,
            0,
            "\(name): a server's RST reached an open connection: \(connections.resetsWhileOpen.map { ($0.destinationPort ?? 0, $0.timestamp) })"
        )
        result.spanningTheFault = connections.open(throughout: cutWindow.start, cutWindow.end).count
        XCTAssertGreaterThanOrEqual(result.spanningTheFault, 3, "\(name): too few sessions were open across the fault")
        XCTAssertLessThanOrEqual(
            result.longestStallMilliseconds,
            stallBoundMilliseconds,
            "\(name): a session stalled longer than the row allows"
        )
        print(
            "fault-matrix row=\(name) sessions=\(result.sessions) spanning=\(result.spanningTheFault) longest_stall_ms=\(result.longestStallMilliseconds)"
        )
        if let path = ProcessInfo.processInfo.environment["FTCP_FAULT_MATRIX_RESULTS"] {
            let line =
                "{\"row\":\"\(name)\",\"sessions\":\(result.sessions),\"spanning\":\(result.spanningTheFault),\"stall_ms\":\(result.longestStallMilliseconds)}\n"
            if let handle = FileHandle(forWritingAtPath: path) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                handle.closeFile()
            } else {
                FileManager.default.createFile(atPath: path, contents: Data(line.utf8))
            }
        }
        return result
    }

    private func addresses(_ host: String) throws -> String {
        try requireLab().foreground(host, "addresses-\(host)", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).output
    }

    private func rules(_ host: String) throws -> String {
        try requireLab().foreground(host, "rules-\(host)", ["iptables", "-t", "mangle", "-S"]).output
    }

    // MARK: Hosts

    func testPrimaryHostCut() throws {
        try row("primary-host-cut", stallBoundMilliseconds: 1_500, inject: { try self.labScript(["fail", "primary"]) })
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
    }

    func testSecondaryHostCut() throws {
        try row(
            "secondary-host-cut",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["fail", "secondary"]) }
        )
        XCTAssertEqual(try status("primary")["state"] as? String, "alone")
    }

    // MARK: Bridge processes

    /// The primary's bridge process is killed while its host and application live: its
    /// guardian releases the service address and the secondary takes over.
    func testPrimaryBridgeKilled() throws {
        try row(
            "primary-bridge-sigkill",
            stallBoundMilliseconds: 1_500,
            inject: { try self.labScript(["kill", "primary", "bridge"]) }
        )
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
        XCTAssertFalse(
            try addresses("primary").contains("10.80.0.1/"),
            "the primary's guardian kept the service address"
        )
    }

    /// The primary's bridge process is stopped for 2 s: its guardian counts it hung after 1 s,
    /// kills it and releases the address; the secondary takes over.
    func testPrimaryBridgeStoppedForTwoSeconds() throws {
        try row(
            "primary-bridge-sigstop-2s",
            stallBoundMilliseconds: 3_000,
            inject: {
                try self.labScript(["kill", "primary", "bridge", "STOP"])
            },
            duringFault: 2.0,
            recover: {
                // The guardian has killed it by now; a CONT finds nothing, which is fine.
                _ = try self.requireLab().labScriptResult(
                    ["kill", "primary", "bridge", "CONT"],
                    environment: ["FTCP_BIN": self.binaries]
                )
            }
        )
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
        let log = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-primary.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("hung"), "the guardian did not report the hang: \(log.suffix(2000))")
    }

    /// The secondary's bridge process is killed: its guardian removes its rules, the primary
    /// serves alone after its detection time, and the guardian starts the bridge again a second
    /// later, which the primary takes back for new connections.
    func testSecondaryBridgeKilled() throws {
        try row(
            "secondary-bridge-sigkill",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["kill", "secondary", "bridge"]) }
        )
        let log = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-secondary.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(
            log.contains("bridge rules removed"),
            "the secondary's guardian did not remove its rules: \(log.suffix(1500))"
        )
        XCTAssertTrue(
            log.contains("starting the bridge process again"),
            "the guardian did not restart the bridge: \(log.suffix(1500))"
        )
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? status("primary")["state"] as? String) != "replicating" {
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertEqual(
            try status("primary")["state"] as? String,
            "replicating",
            "the restarted secondary was not taken back"
        )
    }

    /// After a takeover the promoted secondary's bridge process is killed: its guardian removes
    /// the rules and the host goes on serving the address as a plain server; new connections work.
    func testPromotedSecondaryBridgeKilled() throws {
        try labScript(["fail", "primary"])
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, (try? status("secondary")["state"] as? String) != "promoted" {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
        try row(
            "promoted-secondary-bridge-sigkill",
            stallBoundMilliseconds: 1_000,
            inject: {
                try self.labScript(["kill", "secondary", "bridge"])
            }
        )
        XCTAssertFalse(try rules("secondary").contains("FTCP-SECONDARY"), "the guardian left the rules: a black hole")
        XCTAssertTrue(try addresses("secondary").contains("10.80.0.1/"), "the service address went with the bridge")
    }

    /// The primary's bridge gets SIGHUP (keepalived's reload signal): nothing happens.
    func testPrimaryBridgeIgnoresHangUp() throws {
        try row(
            "primary-bridge-sighup",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["kill", "primary", "bridge", "HUP"]) }
        )
        try row(
            "primary-guardian-sighup",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["kill", "primary", "guardian", "HUP"]) }
        )
        XCTAssertEqual(try status("primary")["state"] as? String, "replicating")
        XCTAssertEqual(try status("secondary")["state"] as? String, "replicating")
        // The guardian took it as a reload: the configuration read again, nothing to change.
        let log = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-primary.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(
            log.contains("configuration reloaded (SIGHUP)") && log.contains("needs_restart=none"),
            "no reload line in the primary's log"
        )
    }

    // MARK: Applications

    /// The primary's application is killed: its kernel closes or resets its connections, and
    /// each goes on from the secondary's copy; new connections are served by the secondary
    /// (the primary's kernel refuses them) until the application is back.
    func testPrimaryApplicationKilled() throws {
        try row(
            "primary-app-sigkill",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["kill", "primary", "app"]) },
            recover: { try self.labScript(["restart-app", "primary"]) }
        )
        let primary = try status("primary")
        XCTAssertEqual(primary["state"] as? String, "replicating", "\(primary)")
    }

    /// The secondary's application is killed: the primary serves its connections alone at
    /// once, and new ones (the secondary's kernel refuses them) unprotected.
    func testSecondaryApplicationKilled() throws {
        try row(
            "secondary-app-sigkill",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["kill", "secondary", "app"]) },
            recover: { try self.labScript(["restart-app", "secondary"]) }
        )
        let counters = try XCTUnwrap(try status("primary")["counters"] as? [String: Any])
        XCTAssertGreaterThan(
            counters["refusedBySecondary"] as? Int ?? 0,
            0,
            "no new connection met the secondary without its application"
        )
    }

    // MARK: Links

    /// The replication channel is cut for a second and heals: the primary serves alone
    /// meanwhile, the secondary never takes the address, and afterwards new connections are
    /// protected again.
    func testReplicationPartitionThenHeal() throws {
        try row(
            "replication-partition-1s",
            stallBoundMilliseconds: 1_000,
            inject: { try self.labScript(["partition", "on"]) },
            duringFault: 1.0,
            recover: { try self.labScript(["partition", "off"]) }
        )
        XCTAssertFalse(
            try addresses("secondary").contains("10.80.0.1/"),
            "split brain: the secondary claimed the address"
        )
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try status("primary")["state"] as? String, "replicating", "the secondary was not taken back")
    }

    /// The primary's interface goes down for a second: the secondary takes over (nothing
    /// answers its probes); when the link comes back the primary hears that the secondary
    /// serves and yields, so exactly one host keeps the address.
    func testPrimaryInterfaceDownForOneSecond() throws {
        try row(
            "primary-interface-down-1s",
            stallBoundMilliseconds: 1_500,
            inject: {
                _ = try self.requireLab().foreground("primary", "link-down", ["ip", "link", "set", "eth0", "down"])
            },
            duringFault: 1.0,
            recover: {
                _ = try self.requireLab().foreground("primary", "link-up", ["ip", "link", "set", "eth0", "up"])
            }
        )
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try status("secondary")["state"] as? String, "promoted")
        XCTAssertFalse(try addresses("primary").contains("10.80.0.1/"), "two hosts hold the service address")
    }

    /// The secondary's interface goes down for a second: the primary serves alone, the
    /// secondary does not take over (its own link is down, its probes cannot leave), and
    /// after the link is back it replicates new connections again.
    func testSecondaryInterfaceDownForOneSecond() throws {
        try row(
            "secondary-interface-down-1s",
            stallBoundMilliseconds: 1_000,
            inject: {
                _ = try self.requireLab().foreground("secondary", "link-down", ["ip", "link", "set", "eth0", "down"])
            },
            duringFault: 1.0,
            recover: {
                _ = try self.requireLab().foreground("secondary", "link-up", ["ip", "link", "set", "eth0", "up"])
            }
        )
        XCTAssertFalse(
            try addresses("secondary").contains("10.80.0.1/"),
            "the secondary took the address over a dead link"
        )
        try waitFor("primary", role: "primary", state: "replicating")
    }

    // MARK: Start-up

    /// The primary started with no secondary: clients are served (unprotected); the secondary
    /// started late: connections opened from then on are protected.
    func testPrimaryStartedAloneThenSecondaryLate() throws {
        let lab = try requireLab()
        try labScript(["ftcp", "stop"])
        try labScript(["ftcp", "start", "primary"])
        let alone = try session("alone", download: 1_000_000, upload: 100_000)
        XCTAssertTrue(alone.wait(timeout: .seconds(20)), "a client could not be served by a primary started alone")
        XCTAssertEqual(alone.lastLineFields["ok"], "1", "\(alone.output) \(alone.errors)")
        XCTAssertEqual(try status("primary")["state"] as? String, "alone")
        try labScript(["ftcp", "start", "secondary"])
        try waitFor("primary", role: "primary", state: "replicating")
        // At 1 Gbit/s the download lasts over 2 s, so the cut surely falls inside it.
        try lab.impair("client", "rate 1gbit")
        let protected = try session("protected", download: 300_000_000, upload: 1_000)
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertTrue(protected.process.isRunning, "the session ended before the cut: \(protected.output)")
        let connections = try XCTUnwrap(try status("primary")["connections"] as? [[String: Any]])
        XCTAssertTrue(
            connections.contains { $0["protected"] as? Bool == true },
            "no connection is protected: \(connections)"
        )
        try labScript(["fail", "primary"])
        XCTAssertTrue(protected.wait(timeout: .seconds(60)))
        XCTAssertEqual(
            protected.lastLineFields["ok"],
            "1",
            "the session opened after the secondary joined did not survive: \(protected.errors)"
        )
        print(
            "primary alone, then joined; a session opened after the join survived the primary's cut: \(protected.lastLineFields)"
        )
        _ = lab
    }
}
