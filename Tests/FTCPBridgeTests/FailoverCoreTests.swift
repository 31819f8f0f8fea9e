import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Fault detector")
struct FaultDetectorTests {
    let settings = FaultDetector.Configuration(heartbeatIntervalMilliseconds: 10, missedHeartbeats: 5)

    @Test("a peer never heard from is never declared failed")
    func neverHeard() {
        var detector = FaultDetector(configuration: settings)
        #expect(detector.check(now: .seconds(100)) == nil)
        #expect(detector.state == .unknown)
    }

    @Test("silence for five heartbeat intervals fails the peer, once")
    func silenceFails() {
        var detector = FaultDetector(configuration: settings)
        #expect(detector.heard(now: .milliseconds(1000)) == .alive)
        #expect(detector.check(now: .milliseconds(1049)) == nil)
        #expect(detector.check(now: .milliseconds(1050)) == .failed)
        #expect(detector.check(now: .milliseconds(1100)) == nil, "reported once")
        #expect(detector.state == .failed)
    }

    @Test("other evidence of life (the primary's segments on the wire) holds off the verdict")
    func evidenceHoldsOff() {
        var detector = FaultDetector(configuration: settings)
        _ = detector.heard(now: .milliseconds(1000))
        detector.sawEvidence(now: .milliseconds(1040))
        #expect(detector.check(now: .milliseconds(1060)) == nil)
        #expect(detector.check(now: .milliseconds(1090)) == .failed)
    }

    @Test("time this bridge itself was not running does not count as the peer's silence")
    func localStallForgiven() {
        var detector = FaultDetector(configuration: settings)
        detector.turn(now: .milliseconds(1000))
        _ = detector.heard(now: .milliseconds(1000))
        // The loop did not run for 300 ms: the peer's heartbeats of that time are unread.
        detector.turn(now: .milliseconds(1300))
        #expect(detector.check(now: .milliseconds(1300)) == nil)
        // Then the peer really is silent.
        detector.turn(now: .milliseconds(1310))
        detector.turn(now: .milliseconds(1320))
        detector.turn(now: .milliseconds(1330))
        #expect(detector.check(now: .milliseconds(1340)) == .failed)
    }

    @Test("the peer's bridge speaking again revives it; evidence alone does not")
    func revival() {
        var detector = FaultDetector(configuration: settings)
        _ = detector.heard(now: .milliseconds(0))
        _ = detector.check(now: .milliseconds(100))
        detector.sawEvidence(now: .milliseconds(110))
        #expect(detector.state == .failed)
        #expect(detector.heard(now: .milliseconds(120)) == .alive)
    }
}

@Suite("The primary alone, after the secondary fails (paper §6)")
struct PrimaryAloneTests {
    typealias S = PrimaryScenario

    @Test("what only the primary held goes out at once, moved by Δ, and later segments need no secondary")
    func flushAndGoOn() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...10)))
        let flushed = scenario.bridge.secondaryFailed(now: scenario.now)
        #expect(flushed.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1)])
        #expect(flushed.packetsToClient.flatMap(\.payload) == numberedBytes(1...10))
        #expect(scenario.status?.phase == "primary-only")
        let next = try scenario.primary(
            S.fromServer(.primary, seq: 41, ack: 1001, window: 700, payload: numberedBytes(11...15))
        )
        #expect(next.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(11)])
        #expect(next.packetsToClient.first?.acknowledgmentNumber == SequenceNumber(1001))
        #expect(next.packetsToClient.first?.window == 700)
        // The client's ACKs still reach the primary's kernel moved by Δ.
        let (delivered, _) = try scenario.client(S.fromClient(seq: 1001, ack: 16))
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(46))
    }

    @Test(
        "alone, a 4,000-byte super-segment of the primary's kernel (queued whole, GSO) leaves in pieces that fit MSS 1,360"
    )
    func superSegmentCutToTheMSS() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1360)],
            primaryOptions: [.maximumSegmentSize(1460)],
            secondaryOptions: [.maximumSegmentSize(1460)]
        )
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        let data = (0..<4000).map { UInt8(truncatingIfNeeded: $0 * 3) }
        let out = try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1001, flags: [.ack, .psh, .fin], payload: data)
        )
        #expect(out.packetsToClient.map(\.payload.count) == [1360, 1360, 1280])
        #expect(
            out.packetsToClient.map(\.sequenceNumber) == [
                SequenceNumber(1), SequenceNumber(1361), SequenceNumber(2721),
            ]
        )
        #expect(out.packetsToClient.flatMap(\.payload) == data)
        #expect(out.packetsToClient.map { $0.flags.contains(.fin) } == [false, false, true])
    }

    @Test("a handshake waiting for the secondary is forgotten, so the primary's own SYN-ACK passes unchanged")
    func handshakeForgotten() throws {
        var scenario = S()
        try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        try scenario.primary(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack]))
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        #expect(scenario.status == nil)
        #expect(
            try scenario.primaryVerdict(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack])) == .pass
        )
    }

    @Test("new connections after the secondary failed are the primary's own and are not tracked")
    func newConnectionsUntracked() throws {
        var scenario = S()
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        let (delivered, _) = try scenario.client(S.fromClient(seq: 1000, flags: [.syn]))
        #expect(delivered != nil)
        #expect(scenario.bridge.connectionCount == 0)
        #expect(
            try scenario.primaryVerdict(S.fromServer(.primary, seq: 5000, ack: 1001, flags: [.syn, .ack])) == .pass
        )
    }

    @Test("with different window scales, the primary's window is re-expressed in the secondary's shift")
    func windowRescaled() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(7)],
            primaryOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(7)],
            secondaryOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(9)]
        )
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        let out = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 400, payload: [1]))
        // 400 << 7 = 51,200 bytes = 100 << 9.
        #expect(out.packetsToClient.first?.window == 100)
    }

    @Test("alone, the primary's window shrinking does not move the edge the client was offered left")
    func aloneWindowNeverShrinks() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        // Both offer 1,000 bytes from 1001: the client is offered the edge 2001.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 1000))
        let offered = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, window: 1000))
        #expect(offered.packetsToClient.map(\.window) == [1000])
        _ = scenario.bridge.secondaryFailed(now: scenario.now)
        #expect(scenario.status?.phase == "primary-only")
        let first = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 1000, payload: [1]))
        #expect(first.packetsToClient.map(\.window) == [1000])
        // The primary's kernel shrinks its window to 100 (edge 1101): the client keeps 2001.
        let shrunk = try scenario.primary(S.fromServer(.primary, seq: 32, ack: 1001, window: 100, payload: [2]))
        #expect(shrunk.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(2)])
        #expect(shrunk.packetsToClient.map(\.window) == [1000])
        // It acknowledges 500 bytes with 100 more (edge 1601): still 2001, so 2001 − 1501 = 500.
        let acknowledged = try scenario.primary(
            S.fromServer(.primary, seq: 33, ack: 1501, window: 100, payload: [3])
        )
        #expect(acknowledged.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1501)])
        #expect(acknowledged.packetsToClient.map(\.window) == [500])
        #expect(scenario.status?.sequence.advertisedEdge == 2001)
        // Once its own edge is beyond the one offered, its window goes out as it is.
        let widened = try scenario.primary(S.fromServer(.primary, seq: 34, ack: 1501, window: 900, payload: [4]))
        #expect(widened.packetsToClient.map(\.window) == [900])
    }
}

@Suite("The secondary after taking over (paper §5)")
struct PromotionTests {
    typealias S = PrimaryScenario
    var bridge = SecondaryBridge(
        configuration: BridgeConfiguration(
            serviceAddress: S.serviceAddress,
            secondaryAddress: S.secondaryAddress,
            protectedPorts: [S.serverPort]
        )
    )

    mutating func capture(_ fields: TCPPacketFields) throws {
        var bytes = try fields.build()
        _ = try bytes.withUnsafeMutableBytes { try bridge.capturedClientSegment(TCPPacket(validating: $0), now: .zero) }
    }

    @Test("an inherited connection keeps the service address on the wire and the secondary's address inside")
    mutating func inheritedTranslated() throws {
        try capture(S.fromClient(seq: 1000, flags: [.syn]))
        #expect(bridge.promote().count == 1)
        var inbound = try S.fromClient(seq: 1001, ack: 7, payload: [1, 2]).build()
        let rewrittenIn = try inbound.withUnsafeMutableBytes {
            try bridge.promotedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(rewrittenIn)
        #expect(try TCPPacketFields(parsing: inbound).destination == S.secondaryAddress)
        #expect(try inbound.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid })

        var outbound = try S.fromServer(.secondary, seq: 7, ack: 1003, payload: [9]).build()
        let rewrittenOut = try outbound.withUnsafeMutableBytes {
            try bridge.promotedKernelSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(rewrittenOut)
        #expect(try TCPPacketFields(parsing: outbound).source == S.serviceAddress)
        #expect(try outbound.withUnsafeMutableBytes { try TCPPacket(validating: $0).isChecksumValid })
    }

    @Test("a connection begun after the takeover is served natively, untouched")
    mutating func newConnectionNative() throws {
        bridge.promote()
        let fields = S.fromClient(seq: 1, flags: [.syn], port: 5555)
        var bytes = try fields.build()
        let rewritten = try bytes.withUnsafeMutableBytes {
            try bridge.promotedClientSegment(TCPPacket(validating: $0), now: .zero)
        }
        #expect(!rewritten)
        #expect(try TCPPacketFields(parsing: bytes) == fields)
    }
}

@Suite("The secondary's takeover decision")
struct TakeoverCoordinatorTests {
    static let promotion: [TakeoverCoordinator.Action] =
        [.startTranslating, .claimServiceAddress, .announceServiceAddress, .restartFlows, .stopCapture]

    @Test(
        "a silent primary whose address nobody answers for is taken over after a round of three probes, translation before the address"
    )
    func takeover() {
        var coordinator = TakeoverCoordinator(probes: .init(count: 3, intervalMilliseconds: 10))
        #expect(coordinator.primaryFailed(silenceMilliseconds: 30, now: .milliseconds(100)) == [.probeServiceAddress])
        #expect(coordinator.state == .checkingAddress)
        #expect(coordinator.tick(now: .milliseconds(105)) == [])
        #expect(coordinator.tick(now: .milliseconds(110)) == [.probeServiceAddress])
        #expect(coordinator.tick(now: .milliseconds(120)) == [.probeServiceAddress])
        #expect(coordinator.tick(now: .milliseconds(129)) == [], "the last probe gets its interval to be answered")
        #expect(coordinator.tick(now: .milliseconds(130)) == Self.promotion)
        #expect(coordinator.state == .promoted)
        #expect(coordinator.since == .milliseconds(130))
        #expect(coordinator.primaryFailed(silenceMilliseconds: 50, now: .milliseconds(200)) == [], "promoted once")
        #expect(coordinator.tick(now: .milliseconds(300)) == [])
    }

    @Test(
        "a planned switchover: the primary says it released the address, and the takeover happens at once, with no probe"
    )
    func handedOver() {
        var coordinator = TakeoverCoordinator(probes: .init(count: 3, intervalMilliseconds: 10))
        #expect(coordinator.primaryHandedOver(now: .milliseconds(500)) == Self.promotion)
        #expect(coordinator.state == .promoted)
        #expect(coordinator.since == .milliseconds(500))
        #expect(coordinator.primaryHandedOver(now: .milliseconds(501)) == [], "the hand-over's repeats change nothing")
        #expect(coordinator.tick(now: .milliseconds(600)) == [])
    }

    @Test(
        "a hand-over in the middle of a round of probes (the primary fell silent first) ends the round and takes over"
    )
    func handedOverWhileProbing() {
        var coordinator = TakeoverCoordinator(probes: .init(count: 3, intervalMilliseconds: 10))
        #expect(coordinator.primaryFailed(silenceMilliseconds: 30, now: .milliseconds(100)) == [.probeServiceAddress])
        #expect(coordinator.primaryHandedOver(now: .milliseconds(104)) == Self.promotion)
        #expect(coordinator.tick(now: .milliseconds(120)) == [], "no probe after the takeover")
    }

    @Test("a probe that left late in a slow turn still gets its whole answer window, counted from when it left")
    func answerWindowFromTheSend() {
        var coordinator = TakeoverCoordinator(probes: .init(count: 1, intervalMilliseconds: 5))
        #expect(coordinator.primaryFailed(silenceMilliseconds: 20, now: .milliseconds(100)) == [.probeServiceAddress])
        coordinator.probeSent(now: .milliseconds(104))
        #expect(coordinator.tick(now: .milliseconds(108)) == [], "only 4 ms since the probe left")
        coordinator.probeAnswered(heldBy: "02:00:00:00:00:01", now: .milliseconds(108))
        #expect(coordinator.state == .addressHeld(by: "02:00:00:00:00:01"))
        #expect(coordinator.tick(now: .milliseconds(109)) == [], "answered: no takeover")
    }

    @Test(
        "a partition: the primary's bridge is silent but its host answers ARP, so the secondary stays put and asks again, less and less often"
    )
    func splitBrainGuard() {
        var coordinator = TakeoverCoordinator(
            probes: .init(count: 3, intervalMilliseconds: 10, reprobeIntervalMilliseconds: 1000)
        )
        _ = coordinator.primaryFailed(silenceMilliseconds: 30, now: .milliseconds(0))
        _ = coordinator.tick(now: .milliseconds(10))
        coordinator.probeAnswered(heldBy: "02:00:00:00:00:01", now: .milliseconds(12))
        #expect(coordinator.state == .addressHeld(by: "02:00:00:00:00:01"))
        #expect(coordinator.tick(now: .milliseconds(30)) == [], "an answered round never ends in a takeover")
        // Rounds start 60, 120, 240, 480, 960, then 1000 ms apart, each answered at once.
        var start: UInt64 = 0
        var gaps: [UInt64] = []
        for _ in 0..<7 {
            var now = start + 1
            while coordinator.tick(now: .milliseconds(now)).isEmpty { now += 1 }
            gaps.append(now - start)
            coordinator.probeAnswered(heldBy: "02:00:00:00:00:01", now: .milliseconds(now))
            start = now
        }
        #expect(gaps == [60, 120, 240, 480, 960, 1000, 1000])
        #expect(coordinator.state == .addressHeld(by: "02:00:00:00:00:01"))
        // The partition heals: the primary's bridge is heard again.
        coordinator.primaryAlive(now: .milliseconds(start + 5))
        #expect(coordinator.state == .replicating)
        #expect(coordinator.tick(now: .milliseconds(start + 5000)) == [])
    }

    @Test("the primary's host going away later still leads to a takeover")
    func heldThenGone() {
        var coordinator = TakeoverCoordinator(
            probes: .init(count: 2, intervalMilliseconds: 10, reprobeIntervalMilliseconds: 1000)
        )
        _ = coordinator.primaryFailed(silenceMilliseconds: 30, now: .milliseconds(0))
        coordinator.probeAnswered(heldBy: "02:00:00:00:00:01", now: .milliseconds(1))
        // The next round comes 40 ms after the first began (twice a round of 2 × 10 ms).
        #expect(coordinator.tick(now: .milliseconds(39)) == [])
        #expect(coordinator.tick(now: .milliseconds(40)) == [.probeServiceAddress])
        #expect(coordinator.tick(now: .milliseconds(50)) == [.probeServiceAddress])
        #expect(coordinator.tick(now: .milliseconds(60)) == Self.promotion)
        #expect(coordinator.state == .promoted)
    }

    @Test("an answer to the last probe of a round, just in time, prevents the takeover")
    func lateAnswer() {
        var coordinator = TakeoverCoordinator(probes: .init(count: 3, intervalMilliseconds: 10))
        _ = coordinator.primaryFailed(silenceMilliseconds: 30, now: .milliseconds(0))
        _ = coordinator.tick(now: .milliseconds(10))
        _ = coordinator.tick(now: .milliseconds(20))
        coordinator.probeAnswered(heldBy: "02:00:00:00:00:01", now: .milliseconds(29))
        #expect(coordinator.tick(now: .milliseconds(30)) == [])
        #expect(coordinator.state == .addressHeld(by: "02:00:00:00:00:01"))
    }
}

@Suite("The primary's watch for a second holder of its address")
struct AddressConflictWatchTests {
    @Test(
        "serving without a secondary begins with a round of 3 probes 5 ms apart, output held; then every 50 ms for 3 s, then every second"
    )
    func schedule() {
        var watch = AddressConflictWatch()
        var due: [Bool] = [watch.probeDue(now: .milliseconds(0))]
        watch.start(now: .milliseconds(1_000))
        #expect(watch.holdsOutput)
        for time: UInt64 in [1_000, 1_004, 1_005, 1_010, 1_014] { due.append(watch.probeDue(now: .milliseconds(time))) }
        #expect(due == [false, true, false, true, true, false])
        #expect(watch.holdsOutput, "the last probe gets its interval to be answered")
        let confirmed = watch.probeDue(now: .milliseconds(1_015))
        #expect(!confirmed && !watch.holdsOutput && watch.phase == .watching)
        var watching: [Bool] = []
        // The last probe left at 1,010: the next 50 ms after it, and a second apart from 3 s on.
        for time: UInt64 in [1_016, 1_060, 1_065, 1_110, 4_020, 4_100, 5_020] {
            watching.append(watch.probeDue(now: .milliseconds(time)))
        }
        #expect(watching == [false, true, false, true, true, false, true])
        watch.stop()
        let afterStop = watch.probeDue(now: .milliseconds(9_000))
        #expect(!afterStop && !watch.isWatching)
    }

    @Test("a probe that cannot leave (the link is down) starts the round over; output stays held")
    func linkDown() {
        var watch = AddressConflictWatch()
        watch.start(now: .milliseconds(0))
        var sent = 0
        for time in stride(from: UInt64(0), through: 100, by: 5) where watch.probeDue(now: .milliseconds(time)) {
            sent += 1
            watch.probeFailed(now: .milliseconds(time))
        }
        #expect(sent == 21)
        #expect(watch.holdsOutput)
        // Never for good: after 3 s of rounds that cannot leave, it serves and watches.
        let last = watch.probeDue(now: .milliseconds(3_000))
        #expect(last && !watch.holdsOutput && watch.phase == .watching)
    }
}
