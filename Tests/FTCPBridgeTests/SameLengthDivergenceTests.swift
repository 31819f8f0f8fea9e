import FTCPWire
import Testing

@testable import FTCPBridge

/// `--divergence same-length`: bytes that differ between the servers but not in length (an HTTP
/// `Date` header that changed on one server a moment before the other) go to the client in the
/// primary's version, and the connection stays protected, within the bounds.
@Suite("Same-length divergence")
struct SameLengthDivergenceTests {
    typealias S = PrimaryScenario

    static func scenario(_ policy: DivergencePolicy) -> S {
        S(
            configuration: BridgeConfiguration(
                serviceAddress: S.serviceAddress,
                secondaryAddress: S.secondaryAddress,
                protectedPorts: [S.serverPort],
                maximumQueuedBytesPerServer: 1 << 20,
                divergencePolicy: policy
            )
        )
    }

    static let primaryDate = Array("HTTP/1.1 200 OK\r\nDate: Sun, 29 Nov 2026 16:50:59 GMT\r\n\r\n".utf8)
    static let secondaryDate = Array("HTTP/1.1 200 OK\r\nDate: Sun, 29 Nov 2026 16:51:00 GMT\r\n\r\n".utf8)

    @Test("a Date header a second apart: the client gets P's bytes 1…56, the connection keeps replicating")
    func toleratesADate() throws {
        var scenario = Self.scenario(DivergencePolicy(ports: [S.serverPort: .sameLength]))
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: Self.primaryDate))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Self.secondaryDate))
        #expect(out.events.isEmpty, "no divergence")
        #expect(out.packetsToClient.flatMap(\.payload) == Self.primaryDate)
        #expect(scenario.status?.phase == "replicating")
        #expect(scenario.status?.statistics.toleratedDifferences == 1)
        #expect(scenario.status?.statistics.toleratedBytes == 3)  // "50:59" against "51:00"
        #expect(scenario.status?.statistics.divergences == 0)
        // The next response, identical on both, merges as usual.
        let next = Array("bye".utf8)
        try scenario.primary(S.fromServer(.primary, seq: 31 + 56, ack: 1001, payload: next))
        let more = try scenario.secondary(S.fromServer(.secondary, seq: 1 + 56, ack: 1001, payload: next))
        #expect(more.packetsToClient.flatMap(\.payload) == next)
    }

    @Test("strict (the default, and ports not named): the same difference ends the protection")
    func strictDiverges() throws {
        for policy in [DivergencePolicy.strict, DivergencePolicy(ports: [80: .sameLength])] {
            var scenario = Self.scenario(policy)
            try scenario.handshake(primaryISN: 30, secondaryISN: 0)
            try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: Self.primaryDate))
            let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: Self.secondaryDate))
            #expect(out.events == [.divergence(scenario.key, at: SequenceNumber(45))])
            #expect(scenario.status?.phase == "primary-only")
        }
    }

    @Test("more than 64 bytes apart in one run, or past 4,096 over the connection, is a divergence")
    func bounds() throws {
        var wide = Self.scenario(DivergencePolicy(defaultTolerance: .sameLength))
        try wide.handshake(primaryISN: 30, secondaryISN: 0)
        try wide.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: Array(repeating: 1, count: 65)))
        let out = try wide.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1001, payload: Array(repeating: 2, count: 65))
        )
        #expect(out.events == [.divergence(wide.key, at: SequenceNumber(1))])

        var many = Self.scenario(DivergencePolicy(defaultTolerance: .sameLength))
        try many.handshake(primaryISN: 30, secondaryISN: 0)
        // 64 runs of 64 differing bytes reach the connection's 4,096; the 65th run diverges.
        for run in 0..<65 {
            let offset = UInt32(run * 64)
            try many.primary(
                S.fromServer(.primary, seq: 31 + offset, ack: 1001, payload: Array(repeating: 1, count: 64))
            )
            let out = try many.secondary(
                S.fromServer(.secondary, seq: 1 + offset, ack: 1001, payload: Array(repeating: 2, count: 64))
            )
            if run < 64 {
                #expect(out.events.isEmpty, "run \(run)")
            } else {
                #expect(out.events == [.divergence(many.key, at: SequenceNumber(1 + offset))])
            }
        }
        #expect(many.status?.statistics.toleratedBytes == 4_096)
    }

    @Test("a shorter, different answer (an error where the other server succeeded) is not taken for the same length")
    func shorterAnswerDiverges() throws {
        var scenario = Self.scenario(DivergencePolicy(defaultTolerance: .sameLength))
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        // P answers with 60 bytes; S with 30 whose last 5 differ: the run ends where S's bytes
        // end, with no equal bytes after the difference to show the two realigned.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: Array(repeating: 0x61, count: 60)))
        let out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                payload: Array(repeating: 0x61, count: 25) + Array(repeating: 0x62, count: 5)
            )
        )
        #expect(out.events == [.divergence(scenario.key, at: SequenceNumber(26))])
        #expect(out.packetsToClient.flatMap(\.payload) == Array(repeating: 0x61, count: 60), "P's whole answer")
        #expect(scenario.status?.statistics.toleratedDifferences == 0)
    }

    @Test("the option's forms")
    func parsing() {
        #expect(DivergencePolicy("strict") == .strict)
        #expect(DivergencePolicy("same-length") == DivergencePolicy(defaultTolerance: .sameLength))
        #expect(DivergencePolicy("5432=same-length,8080=same-length")?.tolerance(forPort: 8080) == .sameLength)
        #expect(DivergencePolicy("5432=same-length")?.tolerance(forPort: 80) == .strict)
        for bad in ["", "lenient", "80", "80=", "=same-length", "0=strict", "80=same-length,"] {
            #expect(DivergencePolicy(bad) == nil, "\(bad)")
        }
    }
}
