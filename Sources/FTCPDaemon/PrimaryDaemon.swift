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
    var detector: FaultDetector
    var counters: [String: UInt64] = [:]
    private var throttle = LogThrottle()
    private var state = "waiting-for-secondary" {
        didSet { if state != oldValue { guardian?.report(state: state) } }
    }
    /// The parent process that cleans up if this one dies (nil when run without one).
    let guardian: GuardianLink?
    /// Set when the secondary announced that it serves the service address: this bridge
    /// gives the address up and ends (``GuardianPolicy/fencedExitCode``).
    public private(set) var fenced = false
    private var stateReason = "started; new connections wait for the secondary for at most the detection time"
    /// Probes for a second holder of the service address while no secondary is heard.
    private var conflictWatch = AddressConflictWatch()
    /// Segments for clients decided while the address was being confirmed (sent once it is).
    private var heldWhileConfirming: [TCPPacketFields] = []
    static let maximumHeldWhileConfirming = 8_192
    /// Connections the secondary must no longer count as its own (its copy is not what the
    /// client holds): sent in released messages at the end of the turn.
    private var toRelease: Set<ConnectionKey> = []
    /// The secondary bridge's epoch on the channel: a new one means its process restarted.
    private var secondaryEpoch: UInt64?
    private var stateSince: MonotonicTime?
    private var scratch = [UInt8](repeating: 0, count: 65_536)
    /// What the merge decided to send to clients during this turn of the loop, sent at its end
    /// (see ``flushToClients(raw:now:)``).
    private var toClients: [TCPPacketFields] = []
    /// Segmentation offload, when enabled and available.
    private var offload: SegmentationOffloadSocket?
    /// Per client address, the neighbour its frames last came from: where the offload sends.
    private var nextHops: [IPv4Address: MACAddress] = [:]
    static let maximumNextHops = 65_536
    private let started = MonotonicClock.now()
    /// Set when this node took the service address over as the secondary and now serves as
    /// primary: what it handed over (its queues, and the connections it inherited).
    private var handOff: TakeoverHandOff?
    /// The connections inherited at the takeover, translated until they close (nil otherwise).
    private var inherited: InheritedConnections?
    /// Gratuitous ARPs for the service address (a separate one: claimed at the start, or taken over).
    private var announcer = AddressAnnouncer()
    /// The replacement of the secondary's rules by the primary's after a takeover, under way.
    private var rulesSwap: BackgroundJob?
    /// A planned switchover was asked for (by the operator through the control socket, or by
    /// the secondary): carried out at the end of the turn.
    private var switchoverRequestedBy: String?
    /// Set once this node handed the service address to its peer in a planned switchover: its
    /// rules go (the address is no longer here, so its kernel cannot answer the connections it
    /// served) and it goes on as the secondary.
    public private(set) var handedOver = false
    /// This node took the service address over as the secondary.
    private var tookOver: Bool { handOff != nil }
    /// Until a new secondary joins, another host that answers for the address is the old
    /// primary come back, which yields: this node announces again and never fences. Once one
    /// has joined, that secondary may take over in turn, and this node yields to it as any
    /// primary does (the latest takeover wins).
    private var winsAddressConflicts = false

    public convenience init(configuration: DaemonConfiguration, logger: Logger, guardian: GuardianLink? = nil) {
        self.init(configuration: configuration, logger: logger, guardian: guardian, handOff: nil)
    }

    init(configuration: DaemonConfiguration, logger: Logger, guardian: GuardianLink?, handOff: TakeoverHandOff?) {
        self.configuration = configuration
        self.logger = logger
        self.guardian = guardian
        self.handOff = handOff
        inherited = handOff?.inherited
        winsAddressConflicts = handOff != nil
        bridge = PrimaryBridge(configuration: configuration.bridgeConfiguration)
        detector = FaultDetector(configuration: configuration.faultDetection)
    }

    /// Refuses to run as primary while another host answers ARP for the service address
    /// (the secondary took over while this host was away).
    private func checkAddressIsOurs() throws {
        let arp = try ARPSocket(interface: configuration.interface)
        defer { arp.close() }
        // With a service address of its own, the peer may be probing for it at this moment too
        // (both starting): only a host that answers for it holds it.
        if let owner = try arp.probe(address: configuration.serviceAddress, timeoutMilliseconds: 200,
                                     holdersOnly: configuration.separateServiceAddress != nil) {
            throw DaemonError.serviceAddressHeld(address: configuration.serviceAddress, by: owner.description,
                                                 interface: configuration.interface)
        }
    }

    /// Runs until SIGINT or SIGTERM. Rules are installed once every queue is
    /// bound and removed on the way out, whatever the reason.
    public func run() throws {
        try TerminationSignals.install()
        if handOff == nil { try checkAddressIsOurs() }
        let outbound = try handOff?.outbound
            ?? NetfilterQueue.open(queue: configuration.outboundQueue, options: configuration.superPacketQueueOptions)
        let inbound = try handOff?.inbound
            ?? NetfilterQueue.open(queue: configuration.inboundQueue, options: configuration.superPacketQueueOptions)
        let raw = try handOff?.sockets.raw ?? RawIPv4Socket(mark: configuration.bypassMark)
        let link = try ReplicationLink(configuration: configuration, logger: logger, socket: handOff?.sockets.replication)
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
            announcer = handOff.announcer
        } else {
            control = try installRulesAndControlSocket(configuration, firewall: firewall)
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
        logger.info(tookOver ? "primary running (took the service address over)" : "primary running", metadata: [
            "service": "\(configuration.serviceAddress)", "secondary": "\(configuration.peerAddress)",
            "ports": "\(configuration.ports.map(String.init).joined(separator: ","))",
            "control": "\(configuration.controlPath)", "key": "\(configuration.key.fingerprint)",
            "detection": "\(configuration.heartbeatIntervalMilliseconds) ms × \(configuration.missedHeartbeats)",
            "segmentation_offload": "\(offload != nil ? "on" : "off")",
            "inherited_connections": "\(inherited?.count ?? 0)",
        ])
        if let handOff {
            // Alone from the first moment: the peer failed, and only a new secondary's voice
            // protects anything again (connections opened from then on).
            state = "alone"
            stateReason = "took the service address over; serving alone until the peer rejoins as secondary"
            stateSince = handOff.since
            carryOut(bridge.secondaryFailed(now: MonotonicClock.now()), link: link, now: MonotonicClock.now())
        }

        guardian?.report(state: state)
        let poller = Poller()
        poller.register(outbound.fileDescriptor)
        poller.register(inbound.fileDescriptor)
        poller.register(link.fileDescriptor)
        poller.register(control.fileDescriptor)
        poller.register(arp.fileDescriptor)
        var nextHeartbeat = MonotonicClock.now()
        var nextExpiry = nextHeartbeat.adding(milliseconds: 1000)
        // The secondary's first heartbeat is awaited from here, not from the checks before.
        let loopStarted = nextHeartbeat

        while TerminationSignals.received == nil && !fenced && !handedOver {
            let ready = try poller.wait(timeoutMilliseconds: Int32(min(configuration.heartbeatIntervalMilliseconds, 50)))
            let now = MonotonicClock.now()
            guardian?.keepAlive(nowMilliseconds: now.nanoseconds / 1_000_000)
            detector.turn(now: now)
            // First in the turn: a heartbeat never waits behind the work of the turn.
            // Not while confirming that the address is still this host's: a heartbeat makes the
            // kernel ARP for the secondary from the service address, which turns clients' ARP
            // caches to this host even if another one now serves it.
            if nextHeartbeat <= now && !conflictWatch.holdsOutput {
                link.send(.heartbeat(ReplicationHeartbeat(
                    sentAtMilliseconds: now.nanoseconds / 1_000_000, state: 1,
                    connectionCount: UInt32(clamping: bridge.connectionCount), sawPeerTrafficAtMilliseconds: 0)), now: now)
                nextHeartbeat = now.adding(milliseconds: configuration.heartbeatIntervalMilliseconds)
            }
            // Clients first: a client's SYN must be known before the secondary's answer to it,
            // which can only have been produced after the same SYN was queued here.
            if ready.contains(inbound.fileDescriptor) {
                try handleClients(inbound, link: link, now: now)
                flushToClients(raw: raw, now: now)
            }
            if ready.contains(outbound.fileDescriptor) {
                try handleOwnKernel(outbound, link: link, now: now)
                flushToClients(raw: raw, now: now)
            }
            if ready.contains(link.fileDescriptor) {
                link.receiveAll(now: now) { message in
                    if detector.heard(now: now) == .alive { secondaryJoined(now: now) }
                    noticeSecondaryRestart(epoch: link.opener.peerEpoch, link: link, now: now)
                    handleReplication(message, link: link, now: now)
                }
                flushToClients(raw: raw, now: now)
            }
            if detector.check(now: now) == .failed, !bridge.isAlone {
                let silence = detector.silenceMilliseconds(now: now) ?? 0
                state = "alone"
                stateReason = "secondary bridge silent for \(silence) ms"
                stateSince = now
                logger.warning("secondary failed: serving alone (unprotected) until it speaks again", metadata: [
                    "silence_ms": "\(silence)", "connections": "\(bridge.connectionCount)",
                ])
                carryOut(bridge.secondaryFailed(now: now), link: link, now: now)
                conflictWatch.start(now: now)
            }
            if detector.checkNeverHeard(since: loopStarted, now: now) == .failed, !bridge.isAlone {
                state = "alone"
                stateReason = "no secondary heard since the start"
                stateSince = now
                logger.warning("""
                    no secondary bridge heard within \(configuration.faultDetection.timeoutMilliseconds) ms of the start: \
                    serving alone (unprotected); connections opened once it speaks are protected
                    """, metadata: ["secondary": "\(configuration.peerAddress)"])
                carryOut(bridge.secondaryFailed(now: now), link: link, now: now)
                conflictWatch.start(now: now)
            }
            if let job = rulesSwap, job.isFinished { finishRulesSwap(job) }
            watchForAnotherHolder(arp, readable: ready.contains(arp.fileDescriptor), now: now)
            announceIfDue(arp: arp, now: now)
            link.retryMissing(now: now)
            if ready.contains(control.fileDescriptor) {
                control.answerPending { request in answer(request, link: link, now: now) }
            }
            sendReleased(link: link, now: now)
            if nextExpiry <= now {
                carryOut(bridge.expire(now: now), link: link, now: now)
                inherited?.expire(now: now, idleMilliseconds: configuration.bridgeConfiguration.idleTimeoutMilliseconds)
                nextExpiry = now.adding(milliseconds: 1000)
            }
            flushToClients(raw: raw, now: now)
            if let requester = switchoverRequestedBy {
                switchoverRequestedBy = nil
                if let refusal = switchoverRefusal {
                    logger.warning("switchover asked by \(requester) refused: \(refusal)")
                } else {
                    handOver(link: link, now: now, reason: "planned switchover asked by \(requester)")
                }
            }
        }
        if TerminationSignals.received != nil && configuration.handOverOnStop && configuration.separateServiceAddress != nil
            && switchoverRefusal == nil {
            handOver(link: link, now: MonotonicClock.now(), reason: "stopped with --hand-over-on-stop")
        }
        if fenced || handedOver { return }
        logger.notice("primary stopping", metadata: ["signal": "\(TerminationSignals.received ?? 0)"])
    }

    /// The secondary speaks, for the first time or again after it was counted failed: new
    /// connections are replicated from now on; those served alone stay unprotected.
    /// While no secondary is heard: asks now and then whether another host holds the service
    /// address (a secondary that took it over while this host was cut off cannot say so over
    /// the channel: its messages to that address stay on its own host). One that answers from
    /// the address holds it; this primary yields as it would to a heartbeat saying `promoted`.
    private func watchForAnotherHolder(_ arp: ARPSocket, readable: Bool, now: MonotonicTime) {
        // Answers first: one waiting must never let a confirming round pass for unanswered.
        var holder: MACAddress?
        if readable || conflictWatch.isWatching {
            do {
                holder = try arp.receiveHolder(of: configuration.serviceAddress)
            } catch {
                count("arpReceiveErrors")
            }
        }
        if holder == nil && conflictWatch.probeDue(now: MonotonicClock.now()) {
            do {
                try arp.sendProbe(address: configuration.serviceAddress)
                count("addressConflictProbes")
            } catch {
                count("addressConflictProbeErrors")
                conflictWatch.probeFailed(now: now)
            }
        }
        guard let holder else { return }
        count("addressHeldElsewhere")
        guard !fenced else { return }
        if winsAddressConflicts {
            // The old primary back on the segment (probing for the address, or answering for
            // it): it finds the address held and yields; clients must keep sending here.
            announcer.reannounce(now: now)
            throttle.warning("holder", "\(holder) uses the service address this node took over: announcing it again",
                             metadata: ["holder": "\(holder)"], logger: logger, now: now)
            return
        }
        guard conflictWatch.isWatching else {
            // Another host sent ARP from the address while the secondary is heard (its link
            // came back just as the secondary claimed it, say): hold output and ask at once.
            throttle.warning("holder", "\(holder) sent ARP from the service address: checking whether it holds it",
                             metadata: ["holder": "\(holder)"], logger: logger, now: now)
            conflictWatch.start(now: now)
            return
        }
        logger.critical("""
            \(holder) answers for the service address while no secondary is heard: the secondary took it over while \
            this host was cut off. This primary gives it up now (two hosts must never answer for it)
            """, metadata: ["holder": "\(holder)", "secondary": "\(configuration.peerAddress)"])
        fenced = true
    }

    private func secondaryJoined(now: MonotonicTime) {
        conflictWatch.stop()
        winsAddressConflicts = false
        let wasAlone = bridge.isAlone
        bridge.secondaryJoined()
        // What it may still hold of connections served alone meanwhile is not theirs any more.
        toRelease.formUnion(bridge.keysServedByPrimaryAlone)
        state = "replicating"
        stateReason = wasAlone ? "secondary joined: connections opened from now on are protected" : "secondary heard"
        stateSince = now
        if wasAlone {
            logger.notice("secondary bridge joined: connections opened from now on are protected", metadata: [
                "secondary": "\(configuration.peerAddress)", "unprotected_connections": "\(bridge.openConnectionCount)",
            ])
        } else {
            logger.info("secondary bridge heard: replicating")
        }
    }

    /// A new epoch from a secondary counted alive means its bridge restarted faster than the
    /// detection time: what it replicated is gone with the old process.
    private func noticeSecondaryRestart(epoch: UInt64?, link: ReplicationLink, now: MonotonicTime) {
        guard let epoch else { return }
        defer { secondaryEpoch = epoch }
        guard let previous = secondaryEpoch, previous != epoch, !bridge.isAlone else { return }
        logger.warning("the secondary's bridge restarted: connections it replicated are served alone (unprotected); new ones are protected",
                       metadata: ["connections": "\(bridge.openConnectionCount)"])
        carryOut(bridge.secondaryRestarted(now: now), link: link, now: now)
        toRelease.formUnion(bridge.keysServedByPrimaryAlone)
    }

    /// The rules of a node that took over are in place (or could not be put there).
    private func finishRulesSwap(_ job: BackgroundJob) {
        rulesSwap = nil
        if let error = job.error {
            logger.critical("""
                the primary's rules could not be installed after the takeover (\(error)): inherited connections are \
                still translated, but connections opened from now on are not bridged (unprotected)
                """)
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
            if let refusal = switchoverRefusal {
                return ControlAnswer(request: request, outcome: "refused", detail: refusal).json()
            }
            let unprotected = unreplicatedOpenConnections
            if unprotected > 0 && request != "switchover-force" {
                return ControlAnswer(
                    request: request, outcome: "refused",
                    detail: """
                        \(unprotected) open connections have no replica on \(configuration.peerAddress) (inherited at a \
                        takeover, or served alone) and would be lost; wait until they close, or force it (--force)
                        """).json()
            }
            switchoverRequestedBy = "the operator"
            return ControlAnswer(
                request: request, outcome: "started",
                detail: "the service address moves to \(configuration.peerAddress); this node goes on as the secondary"
                    + (unprotected > 0 ? " (\(unprotected) unreplicated connections are given up)" : "")).json()
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
            let open = try KernelSocketTable.openConnections(localAddress: configuration.serviceAddress,
                                                             ports: Set(configuration.ports))
            count += open.filter {
                !bridge.isReplicated(ConnectionKey(clientAddress: $0.remoteAddress, clientPort: $0.remotePort,
                                                   serverPort: $0.localPort))
            }.count
        } catch {
            count += bridge.keysServedByPrimaryAlone.count
        }
        return count
    }

    /// Why a planned switchover cannot happen now, or nil when it can.
    private var switchoverRefusal: String? {
        if configuration.separateServiceAddress == nil {
            return "the service address is this host's own (no --service-address), so it cannot move to the peer"
        }
        if fenced || handedOver { return "this node is already giving the service address up" }
        if state != "replicating" || bridge.isAlone {
            return "no secondary replicates (state \(state)): it would have nothing to serve the connections with"
        }
        if conflictWatch.isWatching { return "this node is checking that no other host holds the service address" }
        return nil
    }

    /// A planned switchover: nothing more leaves for clients (this turn's output is sent), the
    /// service address goes, and the secondary is told at once over the channel, so it takes
    /// over without probing. Every byte a client was sent was produced by both kernels, so the
    /// secondary's kernel holds it; what the client has not acknowledged it sends again at once.
    private func handOver(link: ReplicationLink, now: MonotonicTime, reason: String) {
        handedOver = true
        releaseServiceAddress(reason: reason)
        for _ in 0..<3 {
            link.send(.heartbeat(ReplicationHeartbeat(
                sentAtMilliseconds: now.nanoseconds / 1_000_000, state: ReplicationHeartbeat.handingOverState,
                connectionCount: UInt32(clamping: bridge.connectionCount), sawPeerTrafficAtMilliseconds: 0)), now: now)
        }
        counters["switchovers", default: 0] += 1
        logger.notice("\(reason): the secondary takes the service address over now", metadata: [
            "secondary": "\(configuration.peerAddress)", "connections": "\(bridge.openConnectionCount)",
        ])
    }

    /// Tells the secondary which connections it must not inherit at a takeover.
    private func sendReleased(link: ReplicationLink, now: MonotonicTime) {
        guard !toRelease.isEmpty, !bridge.isAlone else { return }
        let all = toRelease.map {
            ReplicatedConnectionID(clientAddress: $0.clientAddress.value, clientPort: $0.clientPort, serverPort: $0.serverPort)
        }
        toRelease.removeAll()
        var start = 0
        while start < all.count {
            let end = min(all.count, start + ReplicationSealer.maximumReleasedPerMessage)
            link.send(.released(connections: Array(all[start..<end])), now: now)
            counters["releasedConnections", default: 0] += UInt64(end - start)
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
            logger.info("""
                primary rules removed after the switchover: the service address is no longer on this host, so its \
                kernel cannot answer the clients of the connections it served
                """)
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
        let address = "\(configuration.serviceAddress)/\(configuration.servicePrefixLength) dev \(configuration.interface)"
        guard configuration.handOverOnStop else {
            logger.critical("""
                primary stopped with \(open) connections open: the rules stay in place, so this kernel does not answer \
                their clients in its own sequence space (which would break them); they stall now. To hand them to the \
                secondary, remove the service address (ip addr del \(address)) and it takes over within a tenth of a \
                second; stop with --hand-over-on-stop to do that in one step. To give them up instead: \
                ftcp-bridge rules remove --role primary.
                """)
            return
        }
        do {
            let result = try AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
                .release(address: configuration.serviceAddress)
            logger.notice("""
                primary stopped with \(open) connections open and handed them over: the service address is released \
                (\(result)), so the secondary takes them over; the rules stay so that this kernel never answers their \
                clients. Before this host serves again: ftcp-bridge rules remove --role primary, then add the address back.
                """)
        } catch {
            logger.critical("""
                primary stopped with \(open) connections open, but releasing the service address failed (\(error)): the \
                secondary cannot take over while this host answers for it. Remove it by hand: ip addr del \(address).
                """)
        }
    }

    /// A service address of its own: added to the interface (once the rules are in place, so no
    /// client meets this kernel unbridged) and announced.
    private func claimServiceAddress() throws {
        let address = configuration.serviceAddress
        let result = try AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
            .claim(address: address)
        logger.notice("service address claimed", metadata: ["address": "\(address)", "result": "\(result)"])
        announcer.start(AnnouncementSchedule(count: 5, intervalMilliseconds: 100), at: MonotonicClock.now())
    }

    private func releaseServiceAddress(reason: String) {
        let address = configuration.serviceAddress
        do {
            let result = try AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
                .release(address: address)
            logger.notice("service address released (\(reason))", metadata: ["address": "\(address)", "result": "\(result)"])
        } catch {
            logger.critical("""
                releasing the service address failed (\(error)): remove it by hand: ip addr del \(address)/\
                \(configuration.servicePrefixLength) dev \(configuration.interface)
                """)
        }
    }

    /// Sends the gratuitous ARPs for the service address that are due (both forms each time).
    private func announceIfDue(arp: ARPSocket, now: MonotonicTime) {
        guard !fenced else { return }
        for _ in 0..<announcer.due(now: now) {
            do {
                try arp.announce(address: configuration.serviceAddress)
                count("gratuitousARPs")
            } catch {
                count("gratuitousARPErrors")
                throttle.warning("announce", "gratuitous ARP failed", metadata: ["error": "\(error)"], logger: logger, now: now)
            }
        }
    }

    /// Gives the service address up after the secondary took it over: the rules stay, so
    /// this kernel never answers the connections the secondary now serves. The bridge then
    /// exits with ``GuardianPolicy/fencedExitCode``.
    private func fence() {
        do {
            let result = try AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
                .release(address: configuration.serviceAddress)
            logger.critical("""
                primary fenced: the service address is released (\(result)) and the rules stay. Before this host serves \
                again: ftcp-bridge rules remove --role primary, then add the address back once the other host has let go
                """)
        } catch {
            logger.critical("""
                primary fenced, but releasing the service address failed (\(error)): remove it by hand: ip addr del \
                \(configuration.serviceAddress)/\(configuration.servicePrefixLength) dev \(configuration.interface)
                """)
        }
    }

    /// The primary's kernel's segments: always taken off the kernel's path; what
    /// reaches the client is what the merge decides.
    private func handleOwnKernel(_ queue: NetfilterQueue, link: ReplicationLink, now: MonotonicTime) throws {
        try queue.drain { packet in
            var bytes = packet.payload
            if inherited != nil, let translated = translateInherited(&bytes, fromKernel: true, packet: packet, now: now) {
                return translated
            }
            let decision: (PrimaryKernelVerdict, BridgeOutput)? = bytes.withUnsafeMutableBytes { buffer in
                guard let view = try? TCPPacket(validating: buffer) else { return nil }
                return bridge.primaryKernelSegment(view, now: now)
            }
            guard let (verdict, output) = decision else {
                count("ownKernelMalformed")
                return .init(id: packet.id, .drop)
            }
            carryOut(output, link: link, now: now)
            // An unprotected connection's segment goes out as it is, but not while this host is
            // not sure the address is still its own.
            return .init(id: packet.id, verdict == .pass && !conflictWatch.holdsOutput ? .accept : .drop)
        }
    }

    /// Clients' segments: rewritten in place (ACK, SACK, TSecr into the primary's space).
    private func handleClients(_ queue: NetfilterQueue, link: ReplicationLink, now: MonotonicTime) throws {
        try queue.drain { packet in
            learnNextHop(packet)
            if packet.isGSO { count("clientSuperSegments") }
            var bytes = packet.payload
            if inherited != nil, let translated = translateInherited(&bytes, fromKernel: false, packet: packet, now: now) {
                return translated
            }
            let decision: (ClientVerdict, BridgeOutput)? = bytes.withUnsafeMutableBytes { buffer in
                guard let view = try? TCPPacket(validating: buffer) else { return nil }
                let result = bridge.clientSegment(view, now: now)
                if case .accept(modified: true) = result.verdict, packet.checksumNotReady {
                    // The field held only the pseudo-header sum: an incremental update would be wrong.
                    view.updateChecksums()
                }
                return result
            }
            guard let (verdict, output) = decision else {
                // Not a TCP/IPv4 packet we can read: the kernel will judge it.
                count("clientMalformedPassed")
                return .init(id: packet.id, .accept)
            }
            carryOut(output, link: link, now: now)
            switch verdict {
            case .accept(modified: false): return .init(id: packet.id, .accept)
            case .accept(modified: true): return .init(id: packet.id, .accept, replacementPayload: bytes)
            case .drop: return .init(id: packet.id, .drop)
            }
        }
    }

    /// A connection inherited at the takeover: readdressed between the service address and this
    /// node's own (see ``InheritedConnections``), never merged. nil: not one of those.
    private func translateInherited(_ bytes: inout [UInt8], fromKernel: Bool, packet: NetfilterQueue.Packet,
                                    now: MonotonicTime) -> NetfilterQueue.VerdictRequest? {
        let rewritten: Bool? = bytes.withUnsafeMutableBytes { buffer in
            guard let view = try? TCPPacket(validating: buffer) else { return nil }
            if fromKernel {
                // From the node's own address: an inherited connection's, or one this bridge
                // does not protect (left as it is); either way never one for the merge.
                guard view.ip.source == configuration.ownAddress else { return nil }
                if packet.checksumNotReady { view.updateChecksums() }
                _ = inherited!.kernelSegment(view, now: now)
                return true
            }
            let key = ConnectionKey(clientAddress: view.ip.source, clientPort: view.tcp.sourcePort,
                                    serverPort: view.tcp.destinationPort)
            guard inherited!.contains(key) else { return nil }
            if packet.checksumNotReady { view.updateChecksums() }
            return inherited!.clientSegment(view, now: now)
        }
        guard rewritten != nil else { return nil }
        return .init(id: packet.id, .accept, replacementPayload: bytes)
    }

    private func handleReplication(_ message: ReplicationMessage, link: ReplicationLink, now: MonotonicTime) {
        switch message {
        case let .segment(packet):
            handleSecondarySegment(packet, link: link, now: now)
        case let .segments(packets):
            for packet in packets { handleSecondarySegment(packet, link: link, now: now) }
        case let .heartbeat(heartbeat):
            if heartbeat.state == ReplicationHeartbeat.switchoverRequestedState && switchoverRequestedBy == nil && !handedOver {
                let unprotected = unreplicatedOpenConnections
                if unprotected == 0 {
                    switchoverRequestedBy = "the secondary"
                } else {
                    throttle.warning("switchover", """
                        the secondary asks for a switchover, but \(unprotected) open connections have no replica there \
                        and would be lost: refused (ftcp-bridge switchover --force on this node gives them up)
                        """, metadata: [:], logger: logger, now: now)
                }
            }
            if heartbeat.state == ReplicationHeartbeat.promotedState && !fenced {
                // Two hosts answer for the address (the secondary took it over while this one
                // was cut off from it, and the partition healed). The secondary's clients
                // followed its gratuitous ARP and it holds every replica: this one yields.
                logger.critical("""
                    the secondary announces that it serves the service address: two hosts answer for it. This primary \
                    gives it up now (the secondary keeps serving every connection it inherited)
                    """, metadata: ["secondary": "\(configuration.peerAddress)"])
                fenced = true
            }
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
            return bridge.secondaryKernelSegment(view, now: now)
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
                // A dying application loses every connection at once: one line a second says so.
                if role == .secondary { toRelease.insert(key) }
                count(role == .primary ? "replicasLostPrimary" : "replicasLostSecondary")
                if let left = throttle.admit("replicaLost.\(role)", now: now) { logger.log(event, similarLinesLeftOut: left) }
                continue
            case let .divergence(key, _):
                toRelease.insert(key)
            default:
                break
            }
            logger.log(event)
        }
        toClients += output.packetsToClient
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
        if conflictWatch.holdsOutput {
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
        for packet in SegmentCoalescing.coalesce(toClients) {
            guard let size = packet.segmentSize, let nextHop = nextHops[packet.fields.destination] else {
                for piece in packet.pieces { sendRaw(piece, raw: raw) }
                continue
            }
            do {
                let length = try scratch.withUnsafeMutableBytes { buffer in try packet.fields.build(into: buffer) }
                try scratch.withUnsafeMutableBytes { buffer in
                    try offload.send(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), segmentSize: size, to: nextHop)
                }
                counters["sentToClient", default: 0] += UInt64(packet.segmentCount)
                count("superSegmentsSent")
            } catch {
                count("superSegmentErrors")
                throttle.warning("superSegment", "segmentation offload refused a run of segments; sending them one by one",
                                 metadata: ["client": "\(packet.fields.destination)", "error": "\(error)"],
                                 logger: logger, now: MonotonicClock.now())
                for piece in packet.pieces { sendRaw(piece, raw: raw) }
            }
        }
    }

    private func sendRaw(_ packet: TCPPacketFields, raw: RawIPv4Socket) {
        do {
            let length = try scratch.withUnsafeMutableBytes { buffer in try packet.build(into: buffer) }
            try scratch.withUnsafeBytes { try raw.send(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
            count("sentToClient")
        } catch {
            count("sendToClientErrors")
            throttle.warning("sendToClient", "sending to client failed",
                             metadata: ["client": "\(packet.destination)", "error": "\(error)"],
                             logger: logger, now: MonotonicClock.now())
        }
    }

    private func openSegmentationOffload() {
        guard configuration.segmentationOffload else { return }
        do {
            offload = try SegmentationOffloadSocket(interface: configuration.interface, sendBufferBytes: 16 << 20)
        } catch {
            logger.warning("segmentation offload unavailable: every merged segment goes out on its own (slower, still correct)",
                           metadata: ["interface": "\(configuration.interface)", "error": "\(error)"])
        }
    }

    /// Remembers which neighbour a client's frames come from, so that runs of segments to it
    /// can leave through the offload socket, which needs the next hop's hardware address.
    private func learnNextHop(_ packet: NetfilterQueue.Packet) {
        guard let offload, let neighbour = packet.linkLayerSource, packet.inputInterface == UInt32(bitPattern: offload.interfaceIndex),
              packet.payload.count >= 20 else { return }
        let client = IPv4Address(packet.payload[12], packet.payload[13], packet.payload[14], packet.payload[15])
        if nextHops[client] == neighbour { return }
        if nextHops.count >= Self.maximumNextHops { nextHops.removeAll(keepingCapacity: true) }
        nextHops[client] = neighbour
    }

    private func count(_ name: String) { counters[name, default: 0] += 1 }

    /// The inherited connections for `status`: served, unprotected.
    private var inheritedStatuses: [DaemonStatus.ConnectionEntry] {
        let entries = inherited?.entries ?? [:]
        return entries.keys.sorted { ($0.clientAddress.value, $0.clientPort) < ($1.clientAddress.value, $1.clientPort) }.map { key in
            DaemonStatus.ConnectionEntry(
                client: "\(key.clientAddress)", clientPort: key.clientPort, serverPort: key.serverPort,
                phase: entries[key]?.isClosing == true ? "inherited-closing" : "inherited", protected: false, delta: nil, timestampDelta: nil,
                queuedPrimaryBytes: nil, queuedSecondaryBytes: nil, bytesSentToClient: nil, bytesFromClient: nil,
                bytesRelayedToPrimary: nil, retransmissionsForwarded: nil, divergences: nil, sequence: nil)
        }
    }

    func status(link: ReplicationLink, now: MonotonicTime) -> DaemonStatus {
        var all = counters
        let c = bridge.counters
        all["segmentsFromPrimaryKernel"] = c.segmentsFromPrimary
        all["segmentsFromSecondaryKernel"] = c.segmentsFromSecondary
        all["segmentsFromClients"] = c.segmentsFromClient
        all["passedUnprotectedFromPrimary"] = c.passedUnprotectedFromPrimary
        all["droppedUnknownFromSecondary"] = c.droppedUnknownFromSecondary
        all["heldEarlySYNACKs"] = c.heldEarlySYNACKs
        all["droppedTableFull"] = c.droppedTableFull
        all["refusedBySecondary"] = c.refusedBySecondary
        all["droppedForSecondaryOnly"] = c.droppedForSecondaryOnly
        all["expired"] = c.expired
        let connections = bridge.connectionStatuses.map { entry in
            DaemonStatus.ConnectionEntry(
                client: "\(entry.key.clientAddress)", clientPort: entry.key.clientPort, serverPort: entry.key.serverPort,
                phase: entry.phase, protected: entry.phase == "replicating" || entry.phase == "handshake",
                delta: entry.delta, timestampDelta: entry.timestampDelta,
                queuedPrimaryBytes: entry.queuedPrimaryBytes, queuedSecondaryBytes: entry.queuedSecondaryBytes,
                bytesSentToClient: entry.statistics.bytesSent, bytesFromClient: nil, bytesRelayedToPrimary: nil,
                retransmissionsForwarded: entry.statistics.retransmissionsForwarded,
                divergences: entry.statistics.divergences, sequence: entry.sequence)
        } + inheritedStatuses
        if let inherited {
            all["inheritedConnections"] = UInt64(inherited.count)
            all["inheritedOpen"] = UInt64(inherited.openCount)
            all["inheritedTranslatedIn"] = inherited.translatedFromClients
            all["inheritedTranslatedOut"] = inherited.translatedFromKernel
        }
        return DaemonStatus(
            role: "primary", state: state, stateReason: stateReason,
            stateSinceSeconds: Double(now.milliseconds(since: stateSince ?? started)) / 1000,
            uptimeSeconds: Double(now.milliseconds(since: started)) / 1000,
            peer: link.peerStatus(now: now, detector: detector),
            counters: all, replication: link.counters, connections: connections)
    }
}
