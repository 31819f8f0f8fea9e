import Foundation
import XCTest

/// A SYN flood against the protected port, from spoofed sources and from one host that drops
/// the SYN-ACKs: legitimate clients connect throughout (every connect succeeds), and a session
/// runs byte-exact; the bridges give half-open entries up for them.
final class HostileTrafficLabTests: RunningFTCPTestCase {
    /// `ip` arguments run in a lab namespace; a failure is a test failure.
    private func ip(_ host: String, _ arguments: [String]) throws {
        let (status, run) = try requireLab().run(host, "ip-\(host)", ["ip"] + arguments)
        XCTAssertEqual(status, 0, "ip \(arguments.joined(separator: " ")) in \(host): \(run.errors)")
    }

    /// Floods `target` from `sources` at `rate` for `seconds` while legitimate clients connect
    /// and a session runs; checks them and returns the primary's counters.
    private func floodWhileClientsConnect(sources: String, rate: Int, seconds: Int) throws -> [String: Any] {
        let lab = try requireLab()
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let flood = try lab.background(
            "client",
            "synflood",
            [
                lab.labtool, "synflood", "--target", "\(serviceAddress):9999", "--rate", String(rate), "--seconds",
                String(seconds), "--sources", sources,
            ]
        )
        // Long enough for the flood to fill both tables (16,384 entries each) several times.
        Thread.sleep(forTimeInterval: 3)
        let session = try session("during-flood", download: 20_000_000, upload: 2_000_000)
        let (connectStatus, connects) = try lab.run(
            "client",
            "connect-time",
            [
                lab.labtool, "connect-time", "--connect", "\(serviceAddress):9999", "--count", "200", "--timeout-s",
                "60",
            ],
            timeout: .seconds(70)
        )
        XCTAssertEqual(
            connectStatus,
            0,
            "a legitimate connect failed during the flood: \(connects.output) \(connects.errors)"
        )
        let longest = finish([("during-flood", session)], context: "during the flood")
        XCTAssertTrue(flood.wait(timeout: .seconds(Double(seconds) + 30)), "the flood did not end")
        let sent = Int(flood.lastLineFields["sent"] ?? "") ?? 0
        XCTAssertGreaterThan(sent, rate * seconds / 2, "the flood sent too little to mean anything: \(flood.output)")
        print(
            "synflood sources=\(sources) rate=\(rate) sent=\(sent) connects: \(connects.output.split(separator: "\n").last ?? "") session_longest_stall_ms=\(longest)"
        )
        let primary = try status("primary")
        let counters = try XCTUnwrap(primary["counters"] as? [String: Any])
        XCTAssertEqual(counters["droppedTableFull"] as? Int, 0, "legitimate SYNs were dropped: \(counters)")
        XCTAssertGreaterThan(
            counters["evictedHandshakes"] as? Int ?? 0,
            0,
            "the flood never filled the table, so the test proved nothing: \(counters)"
        )
        return counters
    }

    /// RFC 5961's blind attacks on live sessions: resets, SYNs and ACKs of unsent data with
    /// random numbers, as if from each session's client. Every session ends byte-exact.
    func testBlindResetsSYNsAndACKsOnLiveSessions() throws {
        let lab = try requireLab()
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        // At 1 Gbit/s the download lasts over 2 s: both sessions are surely open when counted.
        try lab.impair("client", "rate 1gbit")
        let sessions = [
            ("blind-down", try session("blind-down", download: 300_000_000, upload: 2_000_000)),
            ("blind-slow", try session("blind-slow", download: 200_000, upload: 100_000, thinkMilliseconds: 300)),
        ]
        Thread.sleep(forTimeInterval: 0.3)
        let (_, listing) = try lab.run(
            "client",
            "ss",
            ["ss", "-tnH", "state", "established", "dst", "\(serviceAddress):9999"]
        )
        let clients = listing.output.split(separator: "\n").compactMap { line in
            line.split(whereSeparator: { $0 == " " }).dropFirst(2).first.map(String.init)
        }
        XCTAssertEqual(clients.count, 2, "the sessions' connections: \(listing.output)")
        for client in clients {
            for kind in ["rst", "syn", "ack"] {
                let (status, run) = try lab.run(
                    "client",
                    "blind-\(kind)",
                    [
                        lab.labtool, "blind", "--from", client, "--to", "\(serviceAddress):9999", "--kind", kind,
                        "--count", "500", "--rate", "5000",
                    ]
                )
                XCTAssertEqual(status, 0, "blind \(kind): \(run.output) \(run.errors)")
            }
        }
        let longest = finish(sessions, context: "under blind attacks")
        let counters = try XCTUnwrap(try status("primary")["counters"] as? [String: Any])
        print(
            "blind attacks: 2 sessions, 3 x 500 segments each; longest stall \(longest) ms; \(counters.filter { ["synOnEstablished"].contains($0.key) })"
        )
        XCTAssertGreaterThan(
            counters["synOnEstablished"] as? Int ?? 0,
            0,
            "no blind SYN reached the bridge: \(counters)"
        )
        let secondary = try XCTUnwrap(try status("secondary")["counters"] as? [String: Any])
        XCTAssertGreaterThan(
            secondary["unacceptableResets"] as? Int ?? 0,
            0,
            "the secondary judged no blind reset: \(secondary)"
        )
    }

    /// Floods at the replication port from a host that is not the peer: junk UDP datagrams,
    /// and fragments of datagrams that never complete (they would hold each server's
    /// reassembly memory for 30 s). Protected sessions go on, and neither bridge takes the
    /// flood for a failure of its peer.
    func testFloodsAtTheReplicationPort() throws {
        let lab = try requireLab()
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let sessions = [
            ("flood-down", try session("flood-down", download: 200_000_000, upload: 5_000_000)),
            ("flood-slow", try session("flood-slow", download: 200_000, upload: 100_000, thinkMilliseconds: 200)),
        ]
        var floods: [LabProcess] = []
        for server in ["10.80.0.1", "10.80.0.2"] {
            floods.append(
                try lab.background(
                    "client",
                    "udp-junk-\(server)",
                    [
                        lab.labtool, "udp-send", "--to", "\(server):7400", "--count", "100000", "--interval-us", "20",
                        "--size", "512", "--timeout-s", "60",
                    ]
                )
            )
            floods.append(
                try lab.background(
                    "client",
                    "fragflood-\(server)",
                    [
                        lab.labtool, "fragflood", "--to", server, "--from", "10.80.0.10", "--count", "20000", "--rate",
                        "5000",
                    ]
                )
            )
        }
        let longest = finish(sessions, context: "under floods at the replication port")
        XCTAssertLessThanOrEqual(longest, 1_000, "a protected session stalled under the floods")
        for flood in floods {
            XCTAssertTrue(flood.wait(timeout: .seconds(60)), "a flood did not end: \(flood.output)")
        }
        print(
            "floods at the replication port: longest session stall \(longest) ms; \(floods.map { $0.lastLineFields })"
        )
        let primary = try status("primary")
        XCTAssertEqual(primary["state"] as? String, "replicating")
        XCTAssertEqual(try status("secondary")["state"] as? String, "replicating")
        // The junk never reached the channel's socket: the rule admits only the peer.
        let replication = try XCTUnwrap(primary["replication"] as? [String: Any])
        XCTAssertEqual(replication["droppedMalformed"] as? Int, 0, "junk reached the channel: \(replication)")
        for host in ["primary", "secondary"] {
            let log = (try? String(contentsOfFile: "/run/ftcp-lab/bridge-\(host).log", encoding: .utf8)) ?? ""
            XCTAssertFalse(log.contains("serving alone"), "\(host): a false failure verdict under the floods")
            XCTAssertFalse(
                log.contains("taking over the service address"),
                "\(host): a false takeover under the floods"
            )
        }
    }

    func testSYNFloodFromSpoofedSources() throws {
        // The servers answer the spoofed sources through the client's host, which drops what
        // is not its own (it does not forward): their SYN-ACKs go nowhere, as on the Internet.
        for host in ["primary", "secondary"] {
            try ip(host, ["route", "add", "198.51.100.0/24", "via", "10.80.0.10"])
        }
        // FTCP_SYNFLOOD_RATE for the issue's other figure (50,000 a second); CI runs 10,000.
        let rate = Int(ProcessInfo.processInfo.environment["FTCP_SYNFLOOD_RATE"] ?? "") ?? 10_000
        _ = try floodWhileClientsConnect(sources: "198.51.100.0/24", rate: rate, seconds: 10)
    }

    /// Frames a hostile host on the segment addresses to another hardware address than the
    /// primary's: the primary's kernel never gets them, so the secondary's must not either
    /// (its capture sees them in promiscuous mode). They are counted and dropped; the
    /// legitimate traffic of the same run is never refused (no false drop of a good frame).
    func testFramesNotAddressedToThePrimaryAreNotFedToTheSecondary() throws {
        let lab = try requireLab()
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        let session = try session("beside-forged-frames", download: 10_000_000, upload: 10_000_000)
        let (floodStatus, flood) = try lab.run(
            "client",
            "forged-frames",
            [
                lab.labtool, "synflood", "--target", "\(serviceAddress):9999", "--rate", "1000", "--seconds", "2",
                "--sources", "198.51.100.7/32", "--link-destination", "02:00:00:00:99:99", "--interface", "eth0",
            ],
            timeout: .seconds(30)
        )
        XCTAssertEqual(floodStatus, 0, flood.errors)
        let sent = Int(flood.lastLineFields["sent"] ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(sent, 1_900, "the forged frames did not go out: \(flood.output)")
        _ = finish([("beside-forged-frames", session)], context: "beside frames to another hardware address")
        let counters = try XCTUnwrap(try status("secondary")["counters"] as? [String: Any])
        XCTAssertEqual(
            counters["capturedNotToPrimary"] as? Int,
            sent,
            "each forged frame must be refused, and no other: \(counters)"
        )
        XCTAssertNil(counters["capturedBadChecksum"], "a good frame was refused for its checksum: \(counters)")
    }

    func testSYNFloodFromAHostThatDropsTheSYNACKs() throws {
        // A second address on the client's host, whose SYN-ACKs its firewall drops (no RST
        // answers them): every handshake from it stays half-open on both servers.
        try ip("client", ["addr", "add", "10.80.0.11/24", "dev", "eth0"])
        let (status, run) = try requireLab().run(
            "client",
            "drop-synack",
            [
                "iptables", "-A", "INPUT", "-d", "10.80.0.11", "-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j",
                "DROP",
            ]
        )
        XCTAssertEqual(status, 0, run.errors)
        _ = try floodWhileClientsConnect(sources: "10.80.0.11/32", rate: 5_000, seconds: 8)
    }
}
