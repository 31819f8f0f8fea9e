import Testing

@testable import FTCPDaemon

@Suite("status --check and --brief")
struct HealthCheckTests {
    static func status(role: String, state: String, peerAlive: Bool = true, protected: [Bool] = []) -> DaemonStatus {
        DaemonStatus(
            role: role,
            state: state,
            stateReason: "why",
            stateSinceSeconds: 3.5,
            uptimeSeconds: 90_000,
            peer: .init(
                address: "10.80.0.2",
                state: peerAlive ? "alive" : "unknown",
                alive: peerAlive,
                lastHeardMillisecondsAgo: peerAlive ? 4 : nil,
                epoch: nil
            ),
            counters: ["switchovers": 2],
            replication: [:],
            connections: protected.enumerated().map { index, isProtected in
                .init(
                    client: "10.80.0.10",
                    clientPort: UInt16(40_000 + index),
                    serverPort: 9999,
                    phase: isProtected ? "replicating" : "inherited",
                    protected: isProtected
                )
            }
        )
    }

    @Test(
        "a primary serves: exit 0, replicating or alone, with how many connections are protected",
        arguments: [
            ("replicating", "serving as primary, replicating to 10.80.0.2: 1 of 2 connections protected"),
            ("alone", "serving as primary, alone (unprotected: no secondary replicates): 1 of 2 connections protected"),
            (
                "waiting-for-secondary",
                "serving as primary, alone (unprotected: no secondary replicates): 1 of 2 connections protected"
            ),
        ]
    )
    func primaryServes(state: String, line: String) {
        let result = HealthCheck.check(Self.status(role: "primary", state: state, protected: [true, false]))
        #expect(result.verdict == .serving && result.verdict.rawValue == 0)
        #expect(result.line == line)
    }

    @Test("a secondary is a healthy standby (exit 1), also while it checks a silent primary; a promoted one serves")
    func secondary() {
        #expect(HealthCheck.check(Self.status(role: "secondary", state: "replicating")).verdict.rawValue == 1)
        #expect(HealthCheck.check(Self.status(role: "secondary", state: "checking-address")).verdict == .standby)
        #expect(HealthCheck.check(Self.status(role: "secondary", state: "promoted")).verdict == .serving)
    }

    @Test("nothing answering, or a state no role has, is a failure: exit 2")
    func failed() {
        #expect(HealthCheck.check(nil).verdict.rawValue == 2)
        #expect(HealthCheck.check(Self.status(role: "primary", state: "fenced")).verdict == .failed)
    }

    @Test("the brief summary names the state, the peer, the connections by phase and the health line")
    func brief() {
        let text = HealthCheck.brief(
            Self.status(role: "primary", state: "replicating", protected: [true, true, false])
        )
        #expect(text.hasPrefix("primary, replicating for 3.5 s (up 25 h 0 min, pid "))
        #expect(text.contains("peer:        10.80.0.2, alive, last heard 4 ms ago"))
        #expect(text.contains("connections: 1 inherited, 2 replicating; 2 protected"))
        #expect(text.contains("counters:    switchovers 2"))
        #expect(text.contains("health:      serving as primary"))
    }
}
