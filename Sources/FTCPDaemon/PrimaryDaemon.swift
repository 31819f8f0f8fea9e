import FTCPBridge
import FTCPLinux
import FTCPReplication
import FTCPWire
import Logging

/// Runs the primary bridge: NFQUEUE for its kernel's segments to clients and
/// for clients' segments to it, the replication channel for the secondary's
/// segments, a raw socket for what the merge sends to clients.
///
/// One thread, one poll loop; the core (`PrimaryBridge`) decides, this class
/// only moves bytes between the kernel and the core.
public final class PrimaryDaemon {
    let configuration: DaemonConfiguration
    let logger: Logger
    var bridge: PrimaryBridge
    /// The node's control plane: role, state, heartbeats, the peer's liveness, the address.
    public private(set) var node: NodeController
    var counters: [String: UInt64] = [:]
    private var throttle = LogThrottle()
    private var reportedState: String?
    /// The parent process that cleans up if this one dies (nil when run without one).
    let guardian: GuardianLink?
    /// `--metrics`: published once a second.
    let metrics: BridgeMetrics?
    private var nextMetrics = MonotonicTime.zero
    /// Set when another host serves the service address after a takeover this node missed:
    /// this bridge gives the address up and ends (``GuardianPolicy/fencedExitCode``).
    public var fenced: Bool { node.fenced }
    /// Set once this node handed the service address to its peer in a planned switchover: its
    /// rules go (the address is no longer here, so its kernel cannot answer the connections it
    /// served) and it goes on as the secondary.
    public var handedOver: Bool { node.role == .secondary }
    /// Segments for clients decided while the address was being confirmed (sent once it is).
    private var heldWhileConfirming: [TCPPacketFields] = []
    static let maximumHeldWhileConfirming = 8_192
    /// Connections the secondary must no longer count as its own (its copy is not what the
    /// client holds): sent in released messages at the end of the turn.
    private var toRelease: Set<ConnectionKey> = []
    /// Connections the secondary must relay whole again (`--relay digests`): their primary
    /// replica is gone and they are served from the secondary's bytes.
    private var toRelayWhole: Set<ConnectionKey> = []
    private var scratch = [UInt8](repeating: 0, count: 65_536)
    /// What the merge decided to send to clients during this turn of the loop, sent at its end
    /// (see ``flushToClients(raw:now:)``).
    private var toClients: [TCPPacketFields] = []
    /// Segmentation offload, when enabled and available.
    private var offload: SegmentationOffloadSocket?
    /// Per client address, the neighbour its frames last came from: where the offload sends.
    private var nextHops = NextHopTable()
    private let started = MonotonicClock.now()
    /// Set when this node took the service address over as the secondary and now serves as
    /// primary: what it handed over (its queues, and the connections it inherited).
    private var handOff: TakeoverHandOff?
    /// The connections inherited at the takeover, translated until they close (nil otherwise).
    private var inherited: InheritedConnections?
    /// The replacement of the secondary's rules by the primary's after a takeover, under way.
    private var rulesSwap: BackgroundJob?
    /// This node took the service address over as the secondary.
    private var tookOver: Bool { handOff != nil }
    /// When each data segment passed (`--latency-trace-dir`); nil: not recorded.
    private let trace: LatencyTrace?

    public convenience init(configuration: DaemonConfiguration, logger: Logger, guardian: GuardianLink? = nil) {
        self.init(configuration: configuration, logger: logger, guardian: guardian, node: nil, handOff: nil)
    }

    /// - Parameters:
    ///   - node: the node's control plane as the role before left it (a takeover); nil for a
    ///     node that starts as primary.
    init(
        configuration: DaemonConfiguration,
        logger: Logger,
        guardian: GuardianLink?,
        node: NodeController?,
        handOff: TakeoverHandOff?,
        metrics: BridgeMetrics? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.guardian = guardian
        self.metrics = metrics
        self.handOff = handOff
        inherited = handOff?.inherited
        trace = configuration.latencyTraceDirectory.map { LatencyTrace(directory: $0, role: "primary") }
        bridge = PrimaryBridge(configuration: configuration.bridgeConfiguration, digester: PayloadDigests.sha256)
        self.node =
            node
            ?? NodeController(role: .primary, configuration: configuration.nodeConfiguration, now: MonotonicClock.now())
    }

    /// Refuses to run as primary while another host answers ARP for the service address
    /// (the secondary took over while this host was away).
    private func checkAddressIsOurs() throws {
        let arp = try ARPSocket(interface: configuration.interface)
        defer { arp.close() }
        // With a service address of its own, the peer may be probing for it at this moment too
        // (both starting): only a host that answers for it holds it.
        if let owner = try arp.probe(
            address: configuration.serviceAddress,
            timeoutMilliseconds: 200,
            holdersOnly: configuration.separateServiceAddress != nil
        ) {
            throw DaemonError.serviceAddressHeld(
                address: configuration.serviceAddress,
                by: owner.description,
                interface: configuration.interface
            )
        }
    }

    /// Runs until SIGINT or SIGTERM. Rules are installed once every queue is
    /// bound and removed on the way out, whatever the reason.
    public func run() throws {
        try TerminationSignals.install()
        defer { writeTrace(trace, logger: logger) }
        if handOff == nil { try checkAddressIsOurs() }
        let outbound =
            try handOff?.outbound
            ?? NetfilterQueue.open(queue: configuration.outboundQueue, options: configuration.superPacketQueueOptions)
        let inbound =
            try handOff?.inbound
            ?? NetfilterQueue.open(queue: configuration.inboundQueue, options: configuration.superPacketQueueOptions)
        let raw = try handOff?.sockets.raw ?? RawIPv4Socket(mark: configuration.bypassMark)
        let link = try ReplicationLink(
            configuration: configuration,
            logger: logger,
            socket: handOff?.sockets.replication
        )
        let arp = try handOff?.sockets.arp ?? ARPSocket(interface: configuration.interface)
        openSegmentationOffload()
        let firewall = Firewall()
        let control: ControlSocket
        if let handOff {
            // The secondary's chains still send the inherited connections' segments to these
            // queues, which is all they need; the primary's chains (for connections opened from
            // now on, and with a rule for the inherited ones) replace them on another thread,
            // so that no inherited segment waits for iptables.
            control = handOff.sockets.control
            let plan = configuration.firewallPlan(inheriting: true)
            let capture = UncheckedBox(handOff.sockets.captureToClose)
            rulesSwap = BackgroundJob {
                capture.value?.close()
                let firewall = Firewall()
                firewall.remove(role: .primary)
                try firewall.install(plan)
                firewall.remove(role: .secondary)
            }
        } else {
            control = try installRulesAndControlSocket(configuration, firewall: firewall)
            // The secondary's first heartbeat is awaited from here, not from the checks before.
            node = NodeController(
                role: .primary,
                configuration: configuration.nodeConfiguration,
                now: MonotonicClock.now()
            )
            if configuration.separateServiceAddress != nil { try claimServiceAddress() }
        }
        defer {
            offload?.close()
            arp.close()
            stop(firewall: firewall)
            control.close()
            try? outbound.close()
            try? inbound.close()
        }
        logger.info(
            tookOver ? "primary running (took the service address over)" : "primary running",
            metadata: [
                "service": "\(configuration.serviceAddresses.map(\.description).joined(separator: ","))",
                "secondary": "\(configuration.peerAddress)",
                "ports": "\(configuration.ports.map(String.init).joined(separator: ","))",
                "control": "\(configuration.controlPath)", "key": "\(configuration.key.fingerprint)",
                "detection": "\(configuration.heartbeatIntervalMilliseconds) ms × \(configuration.missedHeartbeats)",
                "segmentation_offload": "\(offload != nil ? "on" : "off")",
                "inherited_connections": "\(inherited?.count ?? 0)",
            ]
        )
        if node.primaryState == .alone {
            // Alone from the first moment (a takeover): only a new secondary's voice protects
            // anything again (connections opened from then on).
            carryOut(bridge.secondaryFailed(now: MonotonicClock.now()), link: link, now: MonotonicClock.now())
        }
        reportState()
        let poller = Poller()
        poller.register(outbound.fileDescriptor)
        poller.register(inbound.fileDescriptor)
        poller.register(link.fileDescriptor)
        poller.register(control.fileDescriptor)
        poller.register(arp.fileDescriptor)
        while TerminationSignals.received == nil && !fenced && !handedOver {
            let wake = MonotonicClock.now()
            let timeout = LoopWake.timeoutMilliseconds(
                now: wake,
                deadlines: [
                    node.nextDeadline(now: wake), link.nextRetryDeadline,
                    guardian?.nextAliveMilliseconds.map { .milliseconds($0) },
                    rulesSwap.map { _ in wake.adding(milliseconds: LoopWake.jobPollMilliseconds) },
                    metrics.map { _ in nextMetrics },
                ]
            )
            let ready = try poller.wait(timeoutMilliseconds: timeout)
            let now = MonotonicClock.now()
            guardian?.keepAlive(nowMilliseconds: now.nanoseconds / 1_000_000)
            // First in the turn: a heartbeat never waits behind the work of the turn.
            perform(node.beginTurn(now: now), link: link, arp: arp, now: now)
            // Clients first: a client's SYN must be known before the secondary's answer to it,
            // which can only have been produced after the same SYN was queued here.
            if ready.contains(inbound.fileDescriptor) {
                try handleClients(inbound, link: link, now: now)
                flushToClients(raw: raw, now: now)
            }
            if ready.contains(outbound.fileDescriptor) {
                try handleOwnKernel(outbound, link: link, raw: raw, now: now)
                flushToClients(raw: raw, now: now)
            }
            if ready.contains(link.fileDescriptor) {
                link.receiveAll(now: now) { message in
                    var signal: HeartbeatSignal?
                    if case let .heartbeat(heartbeat) = message {
                        signal = HeartbeatSignal(rawValue: heartbeat.state) ?? .normal
                    }
                    perform(
                        node.peerMessage(heartbeat: signal, epoch: link.opener.peerEpoch, now: now),
                        link: link,
                        arp: arp,
                        now: now
                    )
                    handleReplication(message, link: link, now: now)
                }
                flushToClients(raw: raw, now: now)
            }
            if let job = rulesSwap, job.isFinished { finishRulesSwap(job) }
            // Answers first: one waiting must never let a confirming round pass for unanswered.
            if ready.contains(arp.fileDescriptor) || node.watchesAddress {
                do {
                    if let holder = try arp.receiveHolder(of: configuration.serviceAddress) {
                        perform(
                            node.addressUsedElsewhere(by: holder.description, now: now),
                            link: link,
                            arp: arp,
                            now: now
                        )
                    }
                } catch {
                    count("arpReceiveErrors")
                }
            }
            perform(node.tick(now: now), link: link, arp: arp, now: now)
            link.retryMissing(now: now)
            if ready.contains(control.fileDescriptor) {
                control.answerPending { request in answer(request, link: link, now: now) }
            }
            control.flushReplies()
            sendReleased(link: link, now: now)
            sendRelayWhole(link: link, now: now)
            flushToClients(raw: raw, now: now)
            perform(node.endTurn(now: now), link: link, arp: arp, now: now)
            reportState()
            if let metrics, now >= nextMetrics {
                nextMetrics = now.adding(milliseconds: 1_000)
                metrics.publish(
                    status(link: link, now: now, withConnections: false),
                    queues: NetfilterQueueStatistics.read(),
                    outboundQueue: configuration.outboundQueue,
                    inboundQueue: configuration.inboundQueue
                )
            }
        }
        if TerminationSignals.received != nil && configuration.handOverOnStop && !fenced,
            node.switchoverRequested(
                by: "the stop (--hand-over-on-stop)",
                force: true,
                unreplicatedConnections: 0,
                now: MonotonicClock.now()
            ) == nil
        {
            let now = MonotonicClock.now()
            perform(node.endTurn(now: now), link: link, arp: arp, now: now)
        }
        if fenced || handedOver { return }
        logger.notice("primary stopping", metadata: ["signal": "\(TerminationSignals.received ?? 0)"])
    }

    private func reportState() {
        guard reportedState != node.stateName else { return }
        reportedState = node.stateName
        guardian?.report(state: node.stateName)
    }

    /// Carries out what the node's control plane decided.
    private func perform(_ actions: [NodeController.Action], link: ReplicationLink, arp: ARPSocket, now: MonotonicTime)
    {
        for action in actions {
            switch action {
            case let .sendHeartbeat(signal):
                link.send(
                    .heartbeat(
                        ReplicationHeartbeat(
                            sentAtMilliseconds: now.nanoseconds / 1_000_000,
                            state: signal.rawValue,
                            connectionCount: UInt32(clamping: bridge.connectionCount),
                            sawPeerTrafficAtMilliseconds: 0,
                            hardwareAddress: arp.hardwareAddress.octets,
                            capabilities: .thisBuild
                        )
                    ),
                    now: now
                )
            case .probeServiceAddress:
                do {
                    try arp.sendProbe(address: configuration.serviceAddress)
                    count("addressConflictProbes")
                    node.probeSent(now: MonotonicClock.now())
                } catch {
                    count("addressConflictProbeErrors")
                    node.probeFailed(error: "\(error)", now: now)
                }
            case .announceServiceAddress:
                guard !fenced else { continue }
                do {
                    for address in configuration.serviceAddresses { try arp.announce(address: address) }
                    count("gratuitousARPs")
                } catch {
                    count("gratuitousARPErrors")
                    throttle.warning(
                        "announce",
                        "gratuitous ARP failed",
                        metadata: ["error": "\(error)"],
                        logger: logger,
                        now: now
                    )
                }
            case let .serveAlone(reason):
                logger.warning(
                    "serving alone (unprotected) until a secondary speaks: \(reason)",
                    metadata: [
                        "secondary": "\(configuration.peerAddress)", "connections": "\(bridge.connectionCount)",
                        "detection_ms": "\(configuration.faultDetection.timeoutMilliseconds)",
                    ]
                )
                carryOut(bridge.secondaryFailed(now: now), link: link, now: now)
            case let .replicate(afterAlone):
                bridge.secondaryJoined()
                // What it may still hold of connections served alone meanwhile is not theirs any more.
                toRelease.formUnion(bridge.keysServedByPrimaryAlone)
                if afterAlone {
                    logger.notice(
                        "secondary bridge joined: connections opened from now on are protected",
                        metadata: [
                            "secondary": "\(configuration.peerAddress)",
                            "unprotected_connections": "\(bridge.openConnectionCount)",
                        ]
                    )
                } else {
                    logger.info("secondary bridge heard: replicating")
                }
            case .secondaryRestarted:
                logger.warning(
                    "the secondary's bridge restarted: connections it replicated are served alone (unprotected); new ones are protected",
                    metadata: ["connections": "\(bridge.openConnectionCount)"]
                )
                carryOut(bridge.secondaryRestarted(now: now), link: link, now: now)
                toRelease.formUnion(bridge.keysServedByPrimaryAlone)
            case let .addressUsedElsewhere(owner, response):
                count("addressHeldElsewhere")
                let text =
                    response == .announcedAgain
                    ? "\(owner) uses the service address this node took over: announcing it again"
                    : "\(owner) sent ARP from the service address: checking whether it holds it"
                throttle.warning("holder", "\(text)", metadata: ["holder": "\(owner)"], logger: logger, now: now)
            case let .fence(reason):
                logger.critical(
                    """
                    \(reason). This primary gives the service address up now (two hosts must never answer for it); \
                    the other keeps serving every connection it took over
                    """,
                    metadata: ["secondary": "\(configuration.peerAddress)"]
                )
            case .switchoverAskedByPeer:
                let refusal = node.switchoverRequested(
                    by: "the secondary",
                    force: false,
                    unreplicatedConnections: unreplicatedOpenConnections,
                    now: now
                )
                if let refusal {
                    throttle.warning(
                        "switchover",
                        "the secondary asks for a switchover: refused: \(refusal)",
                        metadata: [:],
                        logger: logger,
                        now: now
                    )
                }
            case let .switchoverRefused(requester, reason):
                logger.warning("switchover asked by \(requester) refused: \(reason)")
            case let .releaseServiceAddress(reason):
                releaseServiceAddress(reason: reason)
            case .becomeSecondary:
                counters["switchovers", default: 0] += 1
                logger.notice(
                    "planned switchover: the secondary takes the service address over now",
                    metadata: [
                        "secondary": "\(configuration.peerAddress)", "connections": "\(bridge.openConnectionCount)",
                    ]
                )
            case .expire:
                carryOut(bridge.expire(now: now), link: link, now: now)
                inherited?.expire(now: now, idleMilliseconds: configuration.bridgeConfiguration.idleTimeoutMilliseconds)
            case .claimServiceAddress, .startTranslating, .restartFlows, .stopCapture, .primaryHeard, .primarySilent,
                .becomePrimary:
                break
            }
        }
    }

    /// The rules of a node that took over are in place (or could not be put there).
    private func finishRulesSwap(_ job: BackgroundJob) {
        rulesSwap = nil
        if let error = job.error {
            logger.critical(
                """
                the primary's rules could not be installed after the takeover (\(error)): inherited connections are \
                still translated, but connections opened from now on are not bridged (unprotected)
                """
            )
        } else {
            logger.info("the primary's rules replace the secondary's")
        }
    }

    /// A control request: `status`, or `switchover` (started at the end of this turn if it can be).
    private func answer(_ request: String, link: ReplicationLink, now: MonotonicTime) -> String {
        switch request {
        case "status":
            return status(link: link, now: now).json()
        case "switchover", "switchover-force":
            let unprotected = node.switchoverRefusal == nil ? unreplicatedOpenConnections : 0
            if let refusal = node.switchoverRequested(
                by: "the operator",
                force: request == "switchover-force",
                unreplicatedConnections: unprotected,
                now: now
            ) {
                return ControlAnswer(request: request, outcome: "refused", detail: refusal).json()
            }
            return ControlAnswer(
                request: request,
                outcome: "started",
                detail: "the service address moves to \(configuration.peerAddress); this node goes on as the secondary"
                    + (unprotected > 0 ? " (\(unprotected) unreplicated connections are given up)" : "")
            ).json()
        default:
            return ControlAnswer.unknown(request).json()
        }
    }

    /// Open connections a switchover would lose, having no replica on the secondary: those
    /// inherited at a takeover, and those of this kernel the merge does not protect (served
    /// alone, or opened while no secondary was heard, which the bridge never tracked).
    private var unreplicatedOpenConnections: Int {
        var count = inherited?.openCount ?? 0
        do {
            var open: [KernelSocketTable.Connection] = []
            for address in configuration.serviceAddresses {
                open += try KernelSocketTable.openConnections(localAddress: address, ports: Set(configuration.ports))
            }
            count +=
                open.filter {
                    !bridge.isReplicated(
                        ConnectionKey(
                            clientAddress: $0.remoteAddress,
                            clientPort: $0.remotePort,
                            serverPort: $0.localPort
                        )
                    )
                }.count
        } catch {
            count += bridge.keysServedByPrimaryAlone.count
        }
        return count
    }

    /// Asks the secondary to relay whole, and resend, the connections this node now serves from
    /// its bytes alone (`--relay digests`; see ``SecondaryBridge/relayWhole(_:)``).
    private func sendRelayWhole(link: ReplicationLink, now: MonotonicTime) {
        guard !toRelayWhole.isEmpty else { return }
        send(toRelayWhole, counter: "relayWholeRequested", link: link, now: now) { .relayWhole(connections: $0) }
        toRelayWhole.removeAll()
    }

    /// Tells the secondary which connections it must not inherit at a takeover.
    private func sendReleased(link: ReplicationLink, now: MonotonicTime) {
        guard !toRelease.isEmpty, !bridge.isAlone else { return }
        send(toRelease, counter: "releasedConnections", link: link, now: now) { .released(connections: $0) }
        toRelease.removeAll()
    }

    /// Names `keys` to the secondary in messages of as many as one may carry, counted in `counter`.
    private func send(
        _ keys: Set<ConnectionKey>,
        counter: String,
        link: ReplicationLink,
        now: MonotonicTime,
        as message: ([ReplicatedConnectionID]) -> ReplicationMessage
    ) {
        let all = keys.map {
            ReplicatedConnectionID(
                clientAddress: $0.clientAddress.value,
                clientPort: $0.clientPort,
                serverPort: $0.serverPort
            )
        }
        var start = 0
        while start < all.count {
            let end = min(all.count, start + ReplicationSealer.maximumReleasedPerMessage)
            link.send(message(Array(all[start..<end])), now: now)
            counters[counter, default: 0] += UInt64(end - start)
            start = end
        }
    }

    /// How the primary leaves. With no connection open, its rules go and its kernel is on its
    /// own. With connections open, their state in this kernel is in the primary's sequence space,
    /// which the client never sees: removing the rules would let the kernel answer them with
    /// segments the client cannot place. So the rules stay (this kernel stays silent towards
    /// those clients), and with `--hand-over-on-stop` the service address is released too, so
    /// the secondary finds it free and takes the connections over.
    private func stop(firewall: Firewall) {
        if let job = rulesSwap {
            job.wait()
            finishRulesSwap(job)
            firewall.remove(role: .secondary)
        }
        if fenced {
            fence()
            return
        }
        if handedOver {
            firewall.remove(role: .primary)
            logger.info(
                """
                primary rules removed after the switchover: the service address is no longer on this host, so its \
                kernel cannot answer the clients of the connections it served
                """
            )
            endStaleCopies(logger: logger, configuration: configuration)
            return
        }
        let open = bridge.openConnectionCount
        guard open > 0 else {
            firewall.remove(role: .primary)
            if configuration.separateServiceAddress != nil {
                // A node that stops serving lets the service address go (its peer, if it
                // replicates, takes it over; new connections then go there).
                releaseServiceAddress(reason: "stopped")
            }
            logger.info("primary stopped; rules removed")
            return
        }
        let address = configuration.serviceAddresses.map {
            "\($0)/\(configuration.servicePrefixLength) dev \(configuration.interface)"
        }.joined(separator: "; ip addr del ")
        guard configuration.handOverOnStop else {
            logger.critical(
                """
                primary stopped with \(open) connections open: the rules stay in place, so this kernel does not answer \
                their clients in its own sequence space (which would break them); they stall now. To hand them to the \
                secondary, remove the service address (ip addr del \(address)) and it takes over within a tenth of a \
                second; stop with --hand-over-on-stop to do that in one step. To give them up instead: \
                ftcp-bridge rules remove --role primary.
                """
            )
            return
        }
        do {
            let result = try configuration.releaseServiceAddresses()
            logger.notice(
                """
                primary stopped with \(open) connections open and handed them over: the service address is released \
                (\(result)), so the secondary takes them over; the rules stay so that this kernel never answers their \
                clients. Before this host serves again: ftcp-bridge rules remove --role primary, then add the address back.
                """
            )
        } catch {
            logger.critical(
                """
                primary stopped with \(open) connections open, but releasing the service address failed (\(error)): the \
                secondary cannot take over while this host answers for it. Remove it by hand: ip addr del \(address).
                """
            )
        }
    }

    /// A service address of its own: added to the interface (once the rules are in place, so no
    /// client meets this kernel unbridged) and announced.
    private func claimServiceAddress() throws {
        for address in configuration.serviceAddresses {
            let result = try AddressClaim(
                interface: configuration.interface,
                prefixLength: configuration.servicePrefixLength
            )
            .claim(address: address)
            logger.notice("service address claimed", metadata: ["address": "\(address)", "result": "\(result)"])
        }
        node.claimedAtStart(now: MonotonicClock.now())
    }

    private func releaseServiceAddress(reason: String) {
        configuration.releaseServiceAddress(reason: reason, logger: logger)
    }

    /// Gives the service address up after the secondary took it over: the rules stay, so
    /// this kernel never answers the connections the secondary now serves. The bridge then
    /// exits with ``GuardianPolicy/fencedExitCode``.
    private func fence() {
        do {
            let result = try configuration.releaseServiceAddresses()
            logger.critical(
                """
                primary fenced: the service address is released (\(result)) and the rules stay. Before this host serves \
                again: ftcp-bridge rules remove --role primary, then add the address back once the other host has let go
                """
            )
        } catch {
            logger.critical(
                """
                primary fenced, but releasing the service address failed (\(error)): remove it by hand: ip addr del \
                \(configuration.serviceAddresses.map { "\($0)/\(configuration.servicePrefixLength)" }.joined(separator: ", ")) \
                dev \(configuration.interface)
                """
            )
        }
    }

    /// The primary's kernel's segments: always taken off the kernel's path; what
    /// reaches the client is what the merge decides.
    private func handleOwnKernel(
        _ queue: NetfilterQueue,
        link: ReplicationLink,
        raw: RawIPv4Socket,
        now: MonotonicTime
    ) throws {
        try queue.drain { packet in
            if packet.isTruncated {
                // Longer than the kernel copies (NetfilterQueue.maximumCopyRange): never passed on
                // unread; its sender sends the bytes again.
                count("truncatedDropped")
                return .init(id: packet.id, .drop)
            }
            // Read, and rewritten if at all, where the kernel wrote it.
            guard let view = try? TCPPacket(validating: packet.bytes) else {
                count("ownKernelMalformed")
                return .init(id: packet.id, .drop)
            }
            if inherited != nil, let translated = translateInherited(view, fromKernel: true, packet: packet, now: now) {
                return translated
            }
            trace?.record(.primaryKernelOut, view, clientPortIsDestination: true)
            let (verdict, output) = bridge.primaryKernelSegment(view, now: now)
            carryOut(output, link: link, now: now)
            // An unprotected connection's segment goes out as it is, but not while this host is
            // not sure the address is still its own.
            return .init(id: packet.id, verdict == .pass && !node.holdsOutput ? .accept : .drop)
        } beforeVerdicts: {
            flushToClients(raw: raw, now: now)
        }
    }

    /// Clients' segments: rewritten in place (ACK, SACK, TSecr into the primary's space).
    private func handleClients(_ queue: NetfilterQueue, link: ReplicationLink, now: MonotonicTime) throws {
        try queue.drain { packet in
            if packet.isTruncated {
                // Longer than the kernel copies (NetfilterQueue.maximumCopyRange): never passed on
                // unread; its sender sends the bytes again.
                count("truncatedDropped")
                return .init(id: packet.id, .drop)
            }
            if packet.isGSO { count("clientSuperSegments") }
            // Read, and rewritten if at all, where the kernel wrote it.
            guard let view = try? TCPPacket(validating: packet.bytes) else {
                // Not a TCP/IPv4 packet the bridge can read, for a protected port: dropped, never
                // passed on untranslated (its ACK would be in the wrong space for this kernel).
                count("clientMalformedDropped")
                return .init(id: packet.id, .drop)
            }
            if inherited != nil, let translated = translateInherited(view, fromKernel: false, packet: packet, now: now)
            {
                return translated
            }
            trace?.record(.primaryClientIn, view, clientPortIsDestination: false)
            let (verdict, output) = bridge.clientSegment(view, now: now)
            if case .accept(modified: true) = verdict, packet.checksumNotReady {
                // The field held only the pseudo-header sum: an incremental update would be wrong.
                view.updateChecksums()
            }
            if case .accept(modified: true) = verdict { learnNextHop(packet, client: view.ip.source) }
            carryOut(output, link: link, now: now)
            switch verdict {
            case .accept(modified: false): return .init(id: packet.id, .accept)
            case .accept(modified: true):
                return .init(id: packet.id, .accept, replacement: UnsafeRawBufferPointer(packet.bytes))
            case .drop: return .init(id: packet.id, .drop)
            }
        }
    }

    /// A connection inherited at the takeover: readdressed between the service address and this
    /// node's own (see ``InheritedConnections``), never merged. nil: not one of those.
    private func translateInherited(
        _ view: TCPPacket,
        fromKernel: Bool,
        packet: NetfilterQueue.Packet,
        now: MonotonicTime
    ) -> NetfilterQueue.VerdictRequest? {
        let rewritten: Bool? = {
            if fromKernel {
                // From the node's own address: an inherited connection's, or one this bridge
                // does not protect (left as it is); either way never one for the merge.
                guard view.ip.source == configuration.ownAddress else { return nil }
                let key = ConnectionKey(serverSegment: view)
                if !inherited!.contains(key),
                    bridge.configuration.selectsOutbound(
                        localPort: key.serverPort,
                        remoteAddress: key.clientAddress,
                        remotePort: key.clientPort
                    )
                {
                    return nil  // a new connection the application opens: the merge's (§7.2)
                }
                if packet.checksumNotReady { view.updateChecksums() }
                _ = inherited!.kernelSegment(view, now: now)
                return true
            }
            let key = ConnectionKey(clientSegment: view)
            guard inherited!.contains(key) || inherited!.adoptRelated(view, now: now) else { return nil }
            if packet.checksumNotReady { view.updateChecksums() }
            return inherited!.clientSegment(view, now: now)
        }()
        guard rewritten != nil else { return nil }
        return .init(id: packet.id, .accept, replacement: UnsafeRawBufferPointer(packet.bytes))
    }

    private func handleReplication(_ message: ReplicationMessage, link: ReplicationLink, now: MonotonicTime) {
        switch message {
        case let .segment(packet):
            handleSecondarySegment(packet, link: link, now: now)
        case let .segments(packets):
            for packet in packets { handleSecondarySegment(packet, link: link, now: now) }
        case let .digests(segments):
            for segment in segments { handleDigestedSegment(segment, link: link, now: now) }
        case .relayWhole:
            count("unexpectedRelayWhole")
        case .heartbeat:
            break  // what it says is the node's business (`peerMessage`)
        case .resendRequest:
            break
        case .released:
            count("unexpectedReleased")
        case .inject:
            count("unexpectedInject")
        }
    }

    private func handleSecondarySegment(_ packet: [UInt8], link: ReplicationLink, now: MonotonicTime) {
        var bytes = packet
        let output: BridgeOutput? = bytes.withUnsafeMutableBytes { buffer in
            guard let view = try? TCPPacket(validating: buffer) else { return nil }
            trace?.record(.primaryRelayIn, view, clientPortIsDestination: true)
            return bridge.secondaryKernelSegment(view, now: now)
        }
        if let output {
            carryOut(output, link: link, now: now)
        } else {
            count("secondarySegmentMalformed")
        }
    }

    private func handleDigestedSegment(_ segment: DigestedSegment, link: ReplicationLink, now: MonotonicTime) {
        var header = segment.header
        let digests = PayloadDigests.digests(of: segment)
        let output: BridgeOutput? = header.withUnsafeMutableBytes { buffer in
            guard let view = try? TCPPacket(validating: buffer) else { return nil }
            trace?.record(
                .primaryRelayIn,
                clientPort: view.tcp.destinationPort,
                sequence: view.tcp.sequenceNumber.rawValue,
                payloadLength: Int(segment.payloadLength)
            )
            return bridge.secondaryDigestedSegment(
                view,
                payloadLength: Int(segment.payloadLength),
                pieceLength: Int(segment.pieceLength),
                digests: digests,
                now: now
            )
        }
        if let output {
            carryOut(output, link: link, now: now)
        } else {
            count("secondarySegmentMalformed")
        }
    }

    private func carryOut(_ output: BridgeOutput, link: ReplicationLink, now: MonotonicTime) {
        for event in output.events {
            switch event {
            case let .replicaLost(key, role, _):
                if role == .secondary { toRelease.insert(key) }
                // Only a secondary that reads relay-whole is asked (one of an older release
                // never relays digests: the bytes are here already).
                if role == .primary && link.peerCapabilities.contains(.digests) { toRelayWhole.insert(key) }
                count(role == .primary ? "replicasLostPrimary" : "replicasLostSecondary")
            case let .divergence(key, _):
                toRelease.insert(key)
                count("divergences")
            case .outboundUnpaired:
                count("outboundUnpaired")
            case .previousConnectionAnswered:
                count("previousConnectionsAnswered")
            default:
                break
            }
            switch event {
            case .connectionReplicated, .connectionClosed:
                logger.log(event)  // debug level: one line per connection, only when asked for
            default:
                // One line a second of each kind, with the count left out: a flood, or an
                // application that dies with every connection it held, makes thousands at once.
                let kind: String
                if case let .replicaLost(_, role, _) = event {
                    kind = "replicaLost.\(role)"
                } else {
                    kind = event.throttleKey
                }
                if let left = throttle.admit(kind, now: now) { logger.log(event, similarLinesLeftOut: left) }
            }
        }
        toClients += output.packetsToClient
        if !output.packetsToClient.isEmpty {
            counters["bytesSentToClients", default: 0] += UInt64(
                output.packetsToClient.reduce(0) { $0 + $1.payload.count }
            )
        }
        for packet in output.packetsToSecondary {
            if let bytes = try? packet.build() {
                link.send(.inject(packet: bytes), now: now)
            }
        }
    }

    /// Sends what this turn of the loop decided for clients. With offload, runs of full-size
    /// segments for one client go out as one super-segment each; anything else, and any run
    /// the offload refuses, goes through the raw socket segment by segment.
    private func flushToClients(raw: RawIPv4Socket, now: MonotonicTime) {
        if node.holdsOutput {
            guard !toClients.isEmpty else { return }
            // Not yet sure the address is still this host's: nothing goes to clients. What the
            // merge decided waits for the round's end (15 ms), up to a bound; past it, TCP sends
            // again anyway.
            let room = max(0, Self.maximumHeldWhileConfirming - heldWhileConfirming.count)
            heldWhileConfirming += toClients.prefix(room)
            counters["heldWhileConfirmingAddress", default: 0] += UInt64(min(room, toClients.count))
            counters["droppedWhileConfirmingAddress", default: 0] += UInt64(max(0, toClients.count - room))
            toClients.removeAll(keepingCapacity: true)
            return
        }
        if !heldWhileConfirming.isEmpty && !fenced {
            // Confirmed: what waited goes first, in its order.
            toClients = heldWhileConfirming + toClients
            heldWhileConfirming.removeAll()
        }
        guard !toClients.isEmpty else { return }
        defer { toClients.removeAll(keepingCapacity: true) }
        guard let offload else {
            for segment in toClients { sendRaw(segment, raw: raw) }
            return
        }
        // Runs go out with their payloads where the merge left them: the headers are built into
        // `scratch`, and the kernel gathers the rest into the frame.
        for run in SegmentCoalescing.runs(toClients, maximumSegments: maximumSegmentsPerGatheredSend) {
            let destination = toClients[run.segments.lowerBound].destination
            guard let size = run.segmentSize, let nextHop = nextHops.nextHop(to: destination) else {
                for index in run.segments { sendRaw(toClients[index], raw: raw) }
                continue
            }
            let header = SegmentCoalescing.header(of: run, in: toClients)
            if let trace { for index in run.segments { trace.recordSent(toClients[index]) } }
            let sent: (any Error)? = toClients.withPayloads(in: run.segments) { pieces in
                scratch.withUnsafeMutableBytes { buffer in
                    do {
                        let length = try header.buildHeaders(into: buffer, payloadLength: run.payloadLength)
                        try offload.send(
                            headers: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]),
                            payload: pieces,
                            segmentSize: size,
                            to: nextHop
                        )
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            if let error = sent {
                count("superSegmentErrors")
                throttle.warning(
                    "superSegment",
                    "segmentation offload refused a run of segments; sending them one by one",
                    metadata: ["client": "\(header.destination)", "error": "\(error)"],
                    logger: logger,
                    now: MonotonicClock.now()
                )
                for index in run.segments { sendRaw(toClients[index], raw: raw) }
            } else {
                counters["sentToClient", default: 0] += UInt64(run.segments.count)
                count("superSegmentsSent")
            }
        }
    }

    private func sendRaw(_ packet: TCPPacketFields, raw: RawIPv4Socket) {
        do {
            let length = try scratch.withUnsafeMutableBytes { buffer in try packet.build(into: buffer) }
            trace?.recordSent(packet)
            try scratch.withUnsafeBytes { try raw.send(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
            count("sentToClient")
        } catch {
            count("sendToClientErrors")
            throttle.warning(
                "sendToClient",
                "sending to client failed",
                metadata: ["client": "\(packet.destination)", "error": "\(error)"],
                logger: logger,
                now: MonotonicClock.now()
            )
        }
    }

    private func openSegmentationOffload() {
        guard configuration.segmentationOffload else { return }
        do {
            offload = try SegmentationOffloadSocket(interface: configuration.interface, sendBufferBytes: 16 << 20)
        } catch {
            logger.warning(
                "segmentation offload unavailable: every merged segment goes out on its own (slower, still correct)",
                metadata: ["interface": "\(configuration.interface)", "error": "\(error)"]
            )
        }
    }

    /// Remembers which neighbour a client's frames come from, so that runs of segments to it
    /// can leave through the offload socket, which needs the next hop's hardware address.
    /// A tracked connection's client segment (translated by the bridge) names its client's next hop.
    /// `client`: the segment's source address.
    private func learnNextHop(_ packet: NetfilterQueue.Packet, client: IPv4Address) {
        guard let offload, let neighbour = packet.linkLayerSource,
            packet.inputInterface == UInt32(bitPattern: offload.interfaceIndex)
        else { return }
        nextHops.learn(client: client, neighbour: neighbour)
    }

    private func count(_ name: String) { counters[name, default: 0] += 1 }

    /// The inherited connections for `status`: served, unprotected.
    private var inheritedStatuses: [DaemonStatus.ConnectionEntry] {
        let entries = inherited?.entries ?? [:]
        return entries.keys.sorted { ($0.clientAddress.value, $0.clientPort) < ($1.clientAddress.value, $1.clientPort) }
            .map { key in
                DaemonStatus.ConnectionEntry(
                    client: "\(key.clientAddress)",
                    clientPort: key.clientPort,
                    serverPort: key.serverPort,
                    phase: entries[key]?.isClosing == true ? "inherited-closing" : "inherited",
                    protected: false,
                    delta: nil,
                    timestampDelta: nil,
                    queuedPrimaryBytes: nil,
                    queuedSecondaryBytes: nil,
                    bytesSentToClient: nil,
                    bytesFromClient: nil,
                    bytesRelayedToPrimary: nil,
                    retransmissionsForwarded: nil,
                    divergences: nil,
                    sequence: nil,
                    service: entries[key].map { "\($0.serviceAddress)" }
                )
            }
    }

    /// The bridge's state; `withConnections: false` leaves the per-connection list out (the
    /// metrics, published every second, need only the counts).
    func status(link: ReplicationLink, now: MonotonicTime, withConnections: Bool = true) -> DaemonStatus {
        var all = counters
        let c = bridge.counters
        all["segmentsFromPrimaryKernel"] = c.segmentsFromPrimary
        all["segmentsFromSecondaryKernel"] = c.segmentsFromSecondary
        all["segmentsFromClients"] = c.segmentsFromClient
        all["passedUnprotectedFromPrimary"] = c.passedUnprotectedFromPrimary
        all["droppedUnknownFromSecondary"] = c.droppedUnknownFromSecondary
        all["heldEarlySYNACKs"] = c.heldEarlySYNACKs
        all["droppedTableFull"] = c.droppedTableFull
        all["passedCollidingAddress"] = c.passedCollidingAddress
        all["evictedHandshakes"] = c.evictedHandshakes
        all["evictedClosed"] = c.evictedClosed
        all["synOnEstablished"] = c.synOnEstablished
        all["refusedBySecondary"] = c.refusedBySecondary
        all["droppedForSecondaryOnly"] = c.droppedForSecondaryOnly
        all["expired"] = c.expired
        all["outboundPaired"] = c.outboundPaired
        all["outboundServedAlone"] = c.outboundServedAlone
        all["passedOutboundAlone"] = c.passedOutboundAlone
        all["outboundRefusedOnSecondary"] = c.outboundRefusedOnSecondary
        all["nextHops"] = UInt64(nextHops.hops.count)
        all["nextHopTableRestarts"] = nextHops.restarts
        let connections =
            !withConnections
            ? []
            : bridge.connectionStatuses.map { entry in
                DaemonStatus.ConnectionEntry(
                    client: "\(entry.key.clientAddress)",
                    clientPort: entry.key.clientPort,
                    serverPort: entry.key.serverPort,
                    phase: entry.phase,
                    protected: entry.phase == "replicating" || entry.phase == "handshake",
                    delta: entry.delta,
                    timestampDelta: entry.timestampDelta,
                    queuedPrimaryBytes: entry.queuedPrimaryBytes,
                    queuedSecondaryBytes: entry.queuedSecondaryBytes,
                    bytesSentToClient: entry.statistics.bytesSent,
                    bytesFromClient: nil,
                    bytesRelayedToPrimary: nil,
                    retransmissionsForwarded: entry.statistics.retransmissionsForwarded,
                    divergences: entry.statistics.divergences,
                    sequence: entry.sequence,
                    service: "\(entry.serviceAddress)",
                    direction: entry.opensOutbound ? "outbound" : "inbound",
                    tolerated: entry.statistics.toleratedDifferences
                )
            } + inheritedStatuses
        if let inherited {
            all["inheritedConnections"] = UInt64(inherited.count)
            all["inheritedOpen"] = UInt64(inherited.openCount)
            all["inheritedTranslatedIn"] = inherited.translatedFromClients
            all["inheritedTranslatedOut"] = inherited.translatedFromKernel
            all["inheritedAdopted"] = inherited.adopted
        }
        let protection = bridge.protectionCounts
        return DaemonStatus(
            role: "primary",
            state: node.stateName,
            stateReason: node.reason,
            stateSinceSeconds: Double(now.milliseconds(since: node.roleSince)) / 1000,
            uptimeSeconds: Double(now.milliseconds(since: started)) / 1000,
            peer: link.peerStatus(now: now, detector: node.detector),
            counters: all,
            replication: link.counters,
            connections: Array(connections.prefix(DaemonStatus.listedConnectionLimit)),
            connectionsNotListed: max(0, connections.count - DaemonStatus.listedConnectionLimit),
            connectionsByKind: [
                "protected": protection.protected,
                "alone": protection.unprotected,
                "inherited": inherited?.openCount ?? 0,
            ]
        )
    }
}
