import Foundation
import XCTest

/// Two service addresses of its own (10.80.0.100 and 10.80.0.101) move together: sessions to
/// each survive a failover byte-exact, the cut host rejoins, and sessions to each opened after
/// the rejoin survive a planned switchover back.
final class ServiceAddressesLabTests: RunningFTCPTestCase {
    override class var serviceAddress: String? { "10.80.0.100,10.80.0.101" }
    static let addresses = ["10.80.0.100", "10.80.0.101"]

    /// The IPv4 addresses on `host`'s eth0.
    private func addresses(on host: String) throws -> String {
        let (status, run) = try requireLab().run(
            host,
            "addresses-\(host)",
            ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]
        )
        XCTAssertEqual(status, 0, run.errors)
        return run.output
    }

    private func assertHolds(_ host: String, _ holds: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let shown = try addresses(on: host)
        for address in Self.addresses {
            XCTAssertEqual(
                shown.contains("inet \(address)/"),
                holds,
                "\(host) on \(address): \(shown)",
                file: file,
                line: line
            )
        }
    }

    private func sessionsToBoth(_ round: String) throws -> [(String, LabProcess)] {
        try Self.addresses.map { address in
            let name = "\(round)-\(address.split(separator: ".").last!)"
            return (name, try session(name, download: 120_000_000, upload: 20_000_000, to: address))
        }
    }

    func testTwoServiceAddressesThroughAFailoverARejoinAndASwitchover() throws {
        try waitFor("primary", role: "primary", state: "replicating")
        try waitFor("secondary", role: "secondary", state: "replicating")
        try assertHolds("primary", true)
        try assertHolds("secondary", false)
        // At 1 Gbit/s the two sessions last about two seconds, so the cut and the switchover
        // fall inside them.
        try requireLab().impair("client", "rate 1gbit")

        let first = try sessionsToBoth("failover")
        Thread.sleep(forTimeInterval: 0.4)
        try labScript(["fail", "primary"])
        let failoverStall = finish(first, context: "through the cut of the primary")
        XCTAssertLessThanOrEqual(failoverStall, 1_500, "a session stalled longer than a takeover allows")
        let survivor = try waitFor("secondary", role: "primary", state: "alone")
        try assertHolds("secondary", true)
        let connections = try XCTUnwrap(survivor["connections"] as? [[String: Any]])
        XCTAssertEqual(
            Set(connections.compactMap { $0["service"] as? String }),
            Set(Self.addresses),
            "the survivor's inherited connections: \(connections)"
        )

        try labScript(["revive", "primary"])
        try waitFor("secondary", role: "primary", state: "replicating")
        try waitFor("primary", role: "secondary", state: "replicating")
        try assertHolds("primary", false)

        let second = try sessionsToBoth("switchover")
        Thread.sleep(forTimeInterval: 0.3)
        let (status, run) = try requireLab().run(
            "primary",
            "switchover",
            ["\(binaries)/ftcp-bridge", "switchover", "--control", "/run/ftcp-lab/primary.sock"],
            timeout: .seconds(15)
        )
        XCTAssertEqual(status, 0, "switchover: \(run.output) \(run.errors)")
        let switchoverStall = finish(second, context: "through the switchover back")
        XCTAssertLessThanOrEqual(switchoverStall, 1_000, "a switchover stalled a session for over a second")
        try waitFor("primary", role: "primary", state: "replicating")
        try assertHolds("primary", true)
        try assertHolds("secondary", false)
        print(
            "service-addresses failover_longest_stall_ms=\(failoverStall) switchover_longest_stall_ms=\(switchoverStall)"
        )
    }
}
