import Testing

@testable import FTCPBridge

/// Two nodes' control planes (``NodeController``) on a simulated segment, with a manual clock:
/// heartbeats cross the replication channel in 1 ms, an ARP probe for the service address is
/// answered by the node that holds it, a gratuitous ARP is seen by the other node, and links
/// and the channel can be cut. Every scenario of continuous protection — a failover, a
/// rejoin, a switchover, and the races between them — runs here deterministically, and after
/// every millisecond the segment checks that two nodes never both answer for the address for
/// longer than a fence takes.
struct SimulatedSegment {
    struct Node {
        var name: String
        var controller: NodeController?
        var linkUp = true
        /// The service address is on its interface.
        var holdsAddress = false
        var epoch: UInt64
        var inbox: [(at: MonotonicTime, signal: HeartbeatSignal, epoch: UInt64, from: NodeController.Role)] = []
        var arpSeen: [(at: MonotonicTime, owner: String)] = []
        /// Every action it carried out, with the time.
        var log: [(at: MonotonicTime, action: NodeController.Action)] = []

        func first(_ match: (NodeController.Action) -> Bool, after: MonotonicTime = .zero) -> MonotonicTime? {
            log.first { $0.at >= after && match($0.action) }?.at
        }
    }

    static let configuration = NodeController.Configuration(rolesSwap: true)
    var nodes: [Node]
    var now = MonotonicTime.milliseconds(1_000)
    var channelCut = false
    /// The longest time both nodes, links up, held the address at once, and the current run.
    var longestDoubleHolding: UInt64 = 0
    private var doubleHoldingSince: MonotonicTime?
    /// What the shell counts as open connections without a replica (for switchover requests).
    var unreplicatedConnections = 0

    init(configuration: NodeController.Configuration = Self.configuration) {
        let start = MonotonicTime.milliseconds(1_000)
        var a = Node(
            name: "A",
            controller: NodeController(role: .primary, configuration: configuration, now: start),
            epoch: 1
        )
        a.holdsAddress = true
        a.controller?.claimedAtStart(now: start)
        let b = Node(
            name: "B",
            controller: NodeController(role: .secondary, configuration: configuration, now: start),
            epoch: 2
        )
        nodes = [a, b]
    }

    subscript(_ name: String) -> Node {
        get { nodes[name == "A" ? 0 : 1] }
        set { nodes[name == "A" ? 0 : 1] = newValue }
    }

    func controller(_ name: String) -> NodeController { self[name].controller! }

    /// Starts (or restarts) a node's bridge in `role` with a new epoch.
    mutating func start(
        _ name: String,
        as role: NodeController.Role,
        configuration: NodeController.Configuration = Self.configuration
    ) {
        self[name].controller = NodeController(role: role, configuration: configuration, now: now)
        self[name].epoch += 10
        self[name].inbox.removeAll()
        self[name].arpSeen.removeAll()
        if role == .primary, self[name].holdsAddress {
            let start = now
            self[name].controller?.claimedAtStart(now: start)
        }
    }

    /// Runs `milliseconds` of time, one millisecond per turn of each node's loop.
    mutating func run(_ milliseconds: UInt64) {
        for _ in 0..<milliseconds { step() }
    }

    /// Runs until `condition` holds (checked every millisecond), at most `limit` ms; returns the time taken.
    @discardableResult
    mutating func run(until condition: (SimulatedSegment) -> Bool, limit: UInt64 = 5_000) -> UInt64? {
        let start = now
        for _ in 0..<limit {
            if condition(self) { return now.milliseconds(since: start) }
            step()
        }
        return condition(self) ? now.milliseconds(since: start) : nil
    }

    mutating func step() {
        now = now.adding(milliseconds: 1)
        for index in nodes.indices where nodes[index].controller != nil {
            turn(index)
        }
        let holders = nodes.filter { $0.linkUp && $0.holdsAddress }.count
        if holders > 1 {
            let since = doubleHoldingSince ?? now
            doubleHoldingSince = since
            longestDoubleHolding = max(longestDoubleHolding, now.milliseconds(since: since))
        } else {
            doubleHoldingSince = nil
        }
    }

    private mutating func turn(_ index: Int) {
        var actions = nodes[index].controller!.beginTurn(now: now)
        let messages = nodes[index].inbox.filter { $0.at <= now }
        nodes[index].inbox.removeAll { $0.at <= now }
        // The channel's opener accepts only the peer role's datagrams (same-role ones count as
        // reflections): two primaries do not hear each other.
        for message in messages where message.from != nodes[index].controller!.role {
            actions += nodes[index].controller!.peerMessage(heartbeat: message.signal, epoch: message.epoch, now: now)
        }
        let seen = nodes[index].arpSeen.filter { $0.at <= now }
        nodes[index].arpSeen.removeAll { $0.at <= now }
        for sighting in seen {
            actions += nodes[index].controller!.addressUsedElsewhere(by: sighting.owner, now: now)
        }
        carryOut(actions, at: index)
        carryOut(nodes[index].controller?.tick(now: now) ?? [], at: index)
        carryOut(nodes[index].controller?.endTurn(now: now) ?? [], at: index)
    }

    private mutating func carryOut(_ actions: [NodeController.Action], at index: Int) {
        let other = 1 - index
        for action in actions {
            nodes[index].log.append((now, action))
            let bothUp = nodes[index].linkUp && nodes[other].linkUp
            switch action {
            case let .sendHeartbeat(signal):
                // A hand-over leaves on the primary's channel (its role changes as it is sent).
                let role =
                    signal == .handingOver ? NodeController.Role.primary : nodes[index].controller?.role ?? .secondary
                if bothUp && !channelCut {
                    nodes[other].inbox.append((now.adding(milliseconds: 1), signal, nodes[index].epoch, role))
                }
            case .probeServiceAddress:
                nodes[index].controller?.probeSent(now: now)
                if bothUp && nodes[other].holdsAddress {
                    nodes[index].arpSeen.append((now.adding(milliseconds: 1), nodes[other].name))
                }
            case .announceServiceAddress:
                if bothUp { nodes[other].arpSeen.append((now.adding(milliseconds: 1), nodes[index].name)) }
            case .claimServiceAddress:
                nodes[index].holdsAddress = true
            case .releaseServiceAddress:
                nodes[index].holdsAddress = false
            case .fence:
                // The shell releases the address and the bridge process ends.
                nodes[index].holdsAddress = false
                nodes[index].controller = nil
                return
            case .switchoverAskedByPeer:
                _ = nodes[index].controller?.switchoverRequested(
                    by: "the secondary",
                    force: false,
                    unreplicatedConnections: unreplicatedConnections,
                    now: now
                )
            default:
                break
            }
        }
    }
}

@Suite("Two nodes on a simulated segment: failover, rejoin, switchover")
struct NodePairTests {
    /// A started as primary with the address, B as secondary: both replicating within 50 ms.
    static func replicatingPair() -> SimulatedSegment {
        var segment = SimulatedSegment()
        let settled = segment.run(
            until: {
                $0.controller("A").primaryState == .replicating && $0.controller("B").takeover.state == .replicating
                    && $0.controller("B").detector.state == .alive
            },
            limit: 50
        )
        #expect(settled != nil)
        return segment
    }

    @Test(
        "a failover: A's link is cut at t; B judges it silent at t+20, probes 3 times 5 ms apart unanswered, claims the address at about t+35 and serves as primary, alone"
    )
    func failover() {
        var segment = Self.replicatingPair()
        let cut = segment.now
        segment["A"].linkUp = false
        let took = segment.run(until: { $0["B"].holdsAddress }, limit: 200)
        #expect(took != nil)
        #expect((20...45).contains(took ?? 0), "detection 10–20 ms + a round of probes 15 ms")
        let b = segment.controller("B")
        #expect(b.role == .primary && b.primaryState == .alone && b.winsAddressConflicts)
        #expect(segment["B"].first({ $0 == .becomePrimary }, after: cut) != nil)
        let order = segment["B"].log.filter { $0.at >= cut }.map(\.action).filter {
            [
                .startTranslating, .claimServiceAddress, .announceServiceAddress, .restartFlows, .stopCapture,
                .becomePrimary,
            ].contains($0)
        }
        #expect(
            Array(order.prefix(6)) == [
                .startTranslating, .claimServiceAddress, .announceServiceAddress, .restartFlows,
                .stopCapture, .becomePrimary,
            ],
            "translation before the address, flows restarted"
        )
    }

    @Test(
        "the cut primary, still running, comes back on its link: it finds B answering for the address and fences itself within a probe round"
    )
    func oldPrimaryComesBackAndYields() {
        var segment = Self.replicatingPair()
        segment["A"].linkUp = false
        segment.run(200)
        #expect(segment.controller("A").primaryState == .alone, "A served alone once it heard no secondary")
        segment["A"].linkUp = true
        let fenced = segment.run(until: { $0["A"].controller == nil }, limit: 2_000)
        #expect(fenced != nil)
        #expect(!segment["A"].holdsAddress && segment["B"].holdsAddress)
        #expect(segment.longestDoubleHolding <= 100, "two holders for \(segment.longestDoubleHolding) ms")
        #expect(segment.controller("B").role == .primary, "B never yields: it won the takeover")
    }

    @Test(
        "10 failovers in a row, alternating: each cut node restarts as the secondary of the survivor, which then replicates again"
    )
    func alternatingFailovers() {
        var segment = Self.replicatingPair()
        var (primary, secondary) = ("A", "B")
        for round in 1...10 {
            segment[primary].linkUp = false
            let took = segment.run(
                until: { $0[secondary].holdsAddress && $0.controller(secondary).role == .primary },
                limit: 500
            )
            #expect(took != nil, "round \(round): \(secondary) did not take over")
            // The cut host reboots: no address, a new bridge that joins as the secondary (what
            // NodeStartPolicy decides when the peer answers for the address).
            segment[primary].holdsAddress = false
            segment[primary].linkUp = true
            segment.start(primary, as: .secondary)
            let joined = segment.run(until: { $0.controller(secondary).primaryState == .replicating }, limit: 200)
            #expect(joined != nil && (joined ?? 999) <= 20, "round \(round): the rejoin took \(joined ?? 0) ms")
            #expect(segment.longestDoubleHolding == 0)
            (primary, secondary) = (secondary, primary)
        }
    }

    @Test(
        "a switchover asked on the primary: it releases the address and says so; the secondary claims it 1 ms later with no probe; the old primary replicates behind it"
    )
    func switchover() {
        var segment = Self.replicatingPair()
        var a = segment.controller("A")
        #expect(
            a.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now) == nil
        )
        segment["A"].controller = a
        let asked = segment.now
        let moved = segment.run(until: { $0["B"].holdsAddress }, limit: 50)
        #expect(moved != nil && (moved ?? 99) <= 3, "the address moved in \(moved ?? 0) ms")
        #expect(segment["B"].first({ $0 == .probeServiceAddress }, after: asked) == nil, "no probe: nothing failed")
        #expect(segment["A"].first({ $0 == .becomeSecondary }, after: asked) != nil)
        let replicating = segment.run(until: { $0.controller("B").primaryState == .replicating }, limit: 50)
        #expect(replicating != nil)
        #expect(segment.controller("A").role == .secondary && segment.controller("A").takeover.state == .replicating)
        #expect(segment.longestDoubleHolding == 0)
    }

    @Test(
        "after a switchover the old primary is silent for 200 ms while it restarts as the secondary: the new primary stays alone and never holds its output back"
    )
    func switchoverThenSilenceWhileTheOldPrimaryRestarts() {
        var segment = Self.replicatingPair()
        var a = segment.controller("A")
        _ = a.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now)
        segment["A"].controller = a
        #expect(segment.run(until: { $0.controller("A").role == .secondary }, limit: 50) != nil)
        // A's bridge is busy moving its rules: nothing from it for 200 ms, but for a late
        // hand-over that B's link (the secondary's until a moment ago) still delivers.
        segment["A"].controller = nil
        #expect(segment.run(until: { $0.controller("B").role == .primary }, limit: 10) != nil)
        var b = segment.controller("B")
        _ = b.peerMessage(heartbeat: .handingOver, epoch: segment["A"].epoch, now: segment.now)
        segment["B"].controller = b
        #expect(segment.controller("B").primaryState == .alone)
        var held = false
        for _ in 0..<200 {
            segment.step()
            held = held || segment.controller("B").holdsOutput
        }
        #expect(!held, "the new primary held clients' segments back")
        #expect(segment.controller("B").primaryState == .alone)
        #expect(segment["B"].holdsAddress)
        // A speaks as the secondary: protected again.
        segment.start("A", as: .secondary)
        #expect(segment.run(until: { $0.controller("B").primaryState == .replicating }, limit: 100) != nil)
    }

    @Test("a switchover asked on the secondary is passed on in its heartbeats and carried out by the primary")
    func switchoverAskedOnTheSecondary() {
        var segment = Self.replicatingPair()
        var b = segment.controller("B")
        #expect(
            b.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now) == nil
        )
        segment["B"].controller = b
        let moved = segment.run(until: { $0["B"].holdsAddress && $0.controller("B").role == .primary }, limit: 50)
        #expect(moved != nil && (moved ?? 99) <= 15)
        #expect(segment.controller("A").role == .secondary)
    }

    @Test(
        "a switchover is refused while connections without a replica are open, unless forced; and while no secondary replicates"
    )
    func switchoverRefusals() {
        var segment = Self.replicatingPair()
        var a = segment.controller("A")
        #expect(
            a.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 2, now: segment.now) != nil
        )
        #expect(
            a.switchoverRequested(by: "the operator", force: true, unreplicatedConnections: 2, now: segment.now) == nil
        )
        var alone = SimulatedSegment()
        alone["B"].controller = nil
        alone.run(100)
        var lonely = alone.controller("A")
        #expect(lonely.primaryState == .alone)
        #expect(
            lonely.switchoverRequested(by: "the operator", force: true, unreplicatedConnections: 0, now: alone.now)
                != nil
        )
        var legacy = SimulatedSegment(configuration: .init(rolesSwap: false))
        legacy.run(50)
        var fixed = legacy.controller("A")
        #expect(
            fixed.switchoverRequested(by: "the operator", force: true, unreplicatedConnections: 0, now: legacy.now)
                != nil
        )
    }

    @Test(
        "race: a switchover asked on the secondary while it suspects the primary (the channel is cut) is refused; the primary, whose host still answers, is not taken over"
    )
    func switchoverWhileSuspected() {
        var segment = Self.replicatingPair()
        segment.channelCut = true
        segment.run(25)
        var b = segment.controller("B")
        #expect(b.takeover.state != .replicating, "B suspects A after 20 ms of silence")
        #expect(
            b.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now) != nil
        )
        segment.run(300)
        #expect(segment["A"].holdsAddress && !segment["B"].holdsAddress, "A answers B's probes: no takeover")
        segment.channelCut = false
        let healed = segment.run(
            until: {
                $0.controller("A").primaryState == .replicating && $0.controller("B").takeover.state == .replicating
            },
            limit: 100
        )
        #expect(healed != nil)
    }

    @Test(
        "race: a switchover accepted by the primary whose hand-over never arrives (the channel fails at that moment): the secondary takes over through its probes, and only one node holds the address"
    )
    func handOverLost() {
        var segment = Self.replicatingPair()
        var a = segment.controller("A")
        #expect(
            a.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now) == nil
        )
        segment["A"].controller = a
        segment.channelCut = true
        let moved = segment.run(until: { $0["B"].holdsAddress }, limit: 200)
        #expect(moved != nil && (moved ?? 999) <= 60, "detection and a probe round, as a failover")
        segment.channelCut = false
        let replicating = segment.run(until: { $0.controller("B").primaryState == .replicating }, limit: 100)
        #expect(replicating != nil)
        #expect(segment.longestDoubleHolding == 0)
    }

    @Test("a secondary started alone (no primary anywhere) takes the address over after 2 s and a probe round")
    func secondaryStartedAlone() {
        var segment = SimulatedSegment()
        segment["A"].controller = nil
        segment["A"].holdsAddress = false
        segment["A"].linkUp = false
        segment.start("B", as: .secondary)
        let took = segment.run(until: { $0["B"].holdsAddress && $0.controller("B").role == .primary }, limit: 3_000)
        #expect(took != nil, "nobody would ever serve the address")
        #expect((2_000...2_100).contains(took ?? 0))
    }

    @Test("a secondary started while a primary holds the address but is not heard yet does not take it over")
    func secondaryStartedBesideASilentHolder() {
        var segment = SimulatedSegment()
        segment.channelCut = true
        segment.start("B", as: .secondary)
        segment.run(3_000)
        #expect(!segment["B"].holdsAddress && segment.controller("B").role == .secondary, "A answers the probes")
        #expect(segment.longestDoubleHolding == 0)
    }

    @Test(
        "race: the secondary dies just as the primary hands the address over: the old primary, now secondary, takes it back"
    )
    func peerDiesDuringHandOver() {
        var segment = Self.replicatingPair()
        var a = segment.controller("A")
        #expect(
            a.switchoverRequested(by: "the operator", force: false, unreplicatedConnections: 0, now: segment.now) == nil
        )
        segment["A"].controller = a
        // B dies now: nothing more of it arrives (its last heartbeat crossed before the request).
        segment["B"].linkUp = false
        segment["B"].controller = nil
        segment["A"].inbox.removeAll()
        segment.run(2)
        #expect(segment.controller("A").role == .secondary && !segment["A"].holdsAddress, "A handed the address over")
        let back = segment.run(until: { $0["A"].holdsAddress && $0.controller("A").role == .primary }, limit: 200)
        #expect(back != nil, "nobody would serve the address")
        #expect((back ?? 999) <= 60, "detection and a probe round: \(back ?? 0) ms")
    }

    @Test(
        "race: the survivor fails during the rejoin (right after it heard the new secondary): the new secondary takes over in turn"
    )
    func failureDuringJoin() {
        var segment = Self.replicatingPair()
        segment["A"].linkUp = false
        segment.run(until: { $0.controller("B").role == .primary }, limit: 200)
        segment["A"].holdsAddress = false
        segment["A"].linkUp = true
        segment.start("A", as: .secondary)
        segment.run(until: { $0.controller("B").primaryState == .replicating }, limit: 50)
        segment["B"].linkUp = false
        let took = segment.run(until: { $0["A"].holdsAddress && $0.controller("A").role == .primary }, limit: 200)
        #expect(took != nil)
        segment["B"].linkUp = true
        let fenced = segment.run(until: { $0["B"].controller == nil }, limit: 2_000)
        #expect(fenced != nil, "B, back on its link with a secondary it lost, yields to A's takeover")
        #expect(segment.longestDoubleHolding <= 100)
    }

    @Test(
        "the older form (no service address of its own): the promoted secondary stays the secondary and a primary that hears it fences"
    )
    func olderForm() {
        var segment = SimulatedSegment(configuration: .init(rolesSwap: false))
        segment.run(50)
        segment["A"].linkUp = false
        segment.run(until: { $0["B"].holdsAddress }, limit: 200)
        #expect(segment.controller("B").role == .secondary && segment.controller("B").takeover.state == .promoted)
        segment["A"].linkUp = true
        let fenced = segment.run(until: { $0["A"].controller == nil }, limit: 500)
        #expect(fenced != nil)
    }

    @Test("the next deadline: a heartbeat interval while replicating, a probe interval while probing")
    func deadlines() {
        var segment = Self.replicatingPair()
        let a = segment.controller("A")
        #expect(a.nextDeadline(now: segment.now).milliseconds(since: segment.now) <= 10)
        segment.channelCut = true
        segment.run(22)
        let b = segment.controller("B")
        #expect(b.watchesAddress)
        #expect(b.nextDeadline(now: segment.now).milliseconds(since: segment.now) <= 5)
    }
}
