import FTCPBridge
import FTCPLinux
import FTCPReplication
import FTCPWire
import Logging

/// Runs the secondary bridge.
///
/// While replicating: a promiscuous capture of clients' segments to the primary, injected into
/// the secondary's own kernel readdressed to it; NFQUEUE for its kernel's segments to clients,
/// which go to the primary over the replication channel instead of the wire.
///
/// When the primary fails (its bridge silent for the detection time, none of its segments on
/// the wire, and nothing answering ARP for its address): translate inherited connections,
/// claim the service address, announce it, stop capturing, and serve alone.
public final class SecondaryDaemon {
    let configuration: DaemonConfiguration
    let logger: Logger
    var bridge: SecondaryBridge
    /// The node's control plane: role, state, heartbeats, the primary's liveness, the takeover.
    public private(set) var node: NodeController
    var counters: [String: UInt64] = [:]
    private let started = MonotonicClock.now()
    private var addressClaimed = false
    private var reportedAddressHeld = false
    private var throttle = LogThrottle()
    /// Segments drained from the kernel's queue and not yet relayed, and what they cost in a
    /// segments message: relayed together once the queue is drained or the datagram is full.
    private var relayBundle: RelayBundler
    /// Captured client data segments, readdressed, waiting to be injected: a run of one
    /// connection's contiguous segments enters the kernel as one segment (see `injectPending`).
    private var pendingInjection: [TCPPacketFields] = []
    private var injectionScratch = [UInt8](repeating: 0, count: 65_536)

    /// The parent process that cleans up if this one dies (nil when run without one).
    let guardian: GuardianLink?
    /// `--metrics`: published once a second.
    let metrics: BridgeMetrics?
    private var nextMetrics = MonotonicTime.zero
    /// At a takeover: from the primary's last word to the claim of the address.
    private var takeoverSilenceMilliseconds: UInt64 = 0
    private var reportedState: String?

    /// - Parameter node: the node's control plane as the role before left it (a switchover);
    ///   nil for a node that starts as secondary.
    public init(
        configuration: DaemonConfiguration,
        logger: Logger,
        guardian: GuardianLink? = nil,
        node: NodeController? = nil,
        metrics: BridgeMetrics? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.guardian = guardian
        self.metrics = metrics
        bridge = SecondaryBridge(configuration: configuration.bridgeConfiguration)
        relayBundle = RelayBundler(maximumDatagramBytes: configuration.relayBundleBytes)
        trace = configuration.latencyTraceDirectory.map { LatencyTrace(directory: $0, role: "secondary") }
        self.node =
            node
            ?? NodeController(
                role: .secondary,
                configuration: configuration.nodeConfiguration,
                now: MonotonicClock.now()
            )
    }

    private var takeover: TakeoverCoordinator { node.takeover }

    /// When each data segment passed (`--latency-trace-dir`); nil: not recorded.
    private let trace: LatencyTrace?

    /// The capture, stopped at the takeover, for the primary this node becomes to close.
    private var captureToClose: PacketCapture?

    /// The primary's hardware address, from its authenticated heartbeats: the capture admits
    /// only client frames addressed to it. Nil until a heartbeat says it.
    private var primaryHardwareAddress: MACAddress?

    /// Set once a takeover of a separate service address is complete: the loop ends and the
    /// node goes on as primary with what this holds.
    private var handOff: TakeoverHandOff?

    /// Runs until SIGINT or SIGTERM, or (with a service address of its own) until it has taken
    /// the address over: then it returns what the primary it becomes needs, its queues still
    /// bound and its rules still in place.
    @discardableResult
    func run() throws -> TakeoverHandOff? {
        try TerminationSignals.install()
        defer {
            // Not at a takeover: writing up to a million records must not delay the primary this
            // node becomes.
            if handOff == nil {
                writeTrace(trace, logger: logger)
            } else if trace != nil {
                logger.notice("latency trace not written: this node took over as primary")
            }
        }
        let outbound = try NetfilterQueue.open(
            queue: configuration.outboundQueue,
            options: configuration.superPacketQueueOptions
        )
        let inbound = try NetfilterQueue.open(queue: configuration.inboundQueue, options: Self.queueOptions)
        var capture: PacketCapture? = try PacketCapture(
            interface: configuration.interface,
            filter: configuration.captureFilter
        )
        let arp = try ARPSocket(interface: configuration.interface)
        let claim = AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
        let raw = try RawIPv4Socket(mark: configuration.bypassMark)
        let link = try ReplicationLink(configuration: configuration, logger: logger)
        let firewall = Firewall()
        let control = try installRulesAndControlSocket(configuration, firewall: firewall)
        defer {
            // Handed on to the primary this node becomes: queues, rules, sockets, address.
            if handOff == nil {
                closeEverything(claim: claim, firewall: firewall, outbound: outbound, inbound: inbound)
                control.close()
                capture?.close()
                arp.close()
                link.close()
            }
        }
        func closeEverything(claim: AddressClaim, firewall: Firewall, outbound: NetfilterQueue, inbound: NetfilterQueue)
        {
            if addressClaimed {
                // Not serving any more: leave the address to whoever serves next.
                for address in configuration.serviceAddresses { _ = try? claim.release(address: address) }
            }
            firewall.remove(role: .secondary)
            try? outbound.close()
            try? inbound.close()
            logger.info("secondary stopped; rules removed")
        }
        logger.info(
            "secondary running",
            metadata: [
                "own": "\(configuration.ownAddress)", "primary": "\(configuration.peerAddress)",
                "interface": "\(configuration.interface)", "control": "\(configuration.controlPath)",
                "key": "\(configuration.key.fingerprint)",
                "detection": "\(configuration.heartbeatIntervalMilliseconds) ms × \(configuration.missedHeartbeats)",
                "segmentation_offload": "\(configuration.segmentationOffload ? "on" : "off")",
                "relay_bundle_bytes": "\(configuration.relayBundleBytes)",
            ]
        )

        let poller = Poller()
        for descriptor in [
            outbound.fileDescriptor, inbound.fileDescriptor, link.fileDescriptor, control.fileDescriptor,
        ] {
            poller.register(descriptor)
        }
        poller.register(arp.fileDescriptor)
        if let capture { poller.register(capture.fileDescriptor) }
        var ready: [Int32] = []
        node.loopStarted(now: MonotonicClock.now())

        while TerminationSignals.received == nil && handOff == nil {
            // While probing, the deadline is the next probe: the round's length is the takeover's delay.
            let wake = MonotonicClock.now()
            let timeout = LoopWake.timeoutMilliseconds(
                now: wake,
                deadlines: [
                    node.nextDeadline(now: wake), link.nextRetryDeadline,
                    guardian?.nextAliveMilliseconds.map { .milliseconds($0) },
                    metrics.map { _ in nextMetrics },
                ]
            )
            try poller.wait(timeoutMilliseconds: timeout, into: &ready)
            let now = MonotonicClock.now()
            if reportedState != node.stateName {
                reportedState = node.stateName
                guardian?.report(state: node.stateName)
            }
            guardian?.keepAlive(nowMilliseconds: now.nanoseconds / 1_000_000)
            let context = Context(
                arp: arp,
                claim: claim,
                raw: raw,
                poller: poller,
                link: link,
                outbound: outbound,
                inbound: inbound,
                control: control
            )
            // First in the turn: a heartbeat never waits behind the work of the turn.
            perform(node.beginTurn(now: now), context, capture: &capture, now: now)
            if let current = capture, ready.contains(current.fileDescriptor) {
                handleCapture(current, raw: raw, now: now)
            }
            if ready.contains(outbound.fileDescriptor) {
                try handleOwnKernel(outbound, link: link, now: now)
            }
            if ready.contains(inbound.fileDescriptor) {
                try handleClients(inbound, now: now)
            }
            if ready.contains(link.fileDescriptor) {
                var heard: [NodeController.Action] = []
                link.receiveAll(now: now) { message in
                    var signal: HeartbeatSignal?
                    if case let .heartbeat(heartbeat) = message {
                        signal = HeartbeatSignal(rawValue: heartbeat.state) ?? .normal
                        learnPrimaryHardwareAddress(heartbeat.hardwareAddress)
                    }
                    heard += node.peerMessage(heartbeat: signal, epoch: link.opener.peerEpoch, now: now)
                    handleReplication(message, raw: raw, link: link, now: now)
                }
                perform(heard, context, capture: &capture, now: now)
            }
            link.retryMissing(now: now)
            if ready.contains(control.fileDescriptor) {
                control.answerPending { request in answer(request, link: link, capture: capture, now: now) }
            }
            control.flushReplies()

            // Answers first: an ARP reply that sits unread must never let a round pass for
            // unanswered (the socket is read on every turn, whatever poll said about it).
            if node.watchesAddress || ready.contains(arp.fileDescriptor) {
                do {
                    if let owner = try arp.receiveConflict(for: configuration.serviceAddress) {
                        perform(
                            node.addressUsedElsewhere(by: owner.description, now: now),
                            context,
                            capture: &capture,
                            now: now
                        )
                    }
                } catch {
                    count("arpReceiveErrors")
                }
            }
            perform(node.tick(now: MonotonicClock.now()), context, capture: &capture, now: now)
            if let metrics, now >= nextMetrics {
                nextMetrics = now.adding(milliseconds: 1_000)
                metrics.publish(
                    status(link: link, capture: capture, now: now, withConnections: false),
                    queues: NetfilterQueueStatistics.read(),
                    outboundQueue: configuration.outboundQueue,
                    inboundQueue: configuration.inboundQueue
                )
            }
        }
        if let handOff {
            logger.notice(
                "takeover complete: going on as primary",
                metadata: ["inherited": "\(handOff.inherited.count)"]
            )
            return handOff
        }
        logger.notice(
            "secondary stopping",
            metadata: ["signal": "\(TerminationSignals.received ?? 0)", "state": "\(takeover.state.name)"]
        )
        return nil
    }

    /// What a turn's actions need of the loop's sockets.
    private struct Context {
        var arp: ARPSocket
        var claim: AddressClaim
        var raw: RawIPv4Socket
        var poller: Poller
        var link: ReplicationLink
        var outbound: NetfilterQueue
        var inbound: NetfilterQueue
        var control: ControlSocket
    }

    /// Carries out what the node's control plane decided.
    private func perform(
        _ actions: [NodeController.Action],
        _ context: Context,
        capture: inout PacketCapture?,
        now: MonotonicTime
    ) {
        for action in actions {
            switch action {
            case let .sendHeartbeat(signal):
                context.link.send(
                    .heartbeat(
                        ReplicationHeartbeat(
                            sentAtMilliseconds: now.nanoseconds / 1_000_000,
                            state: signal.rawValue,
                            connectionCount: UInt32(clamping: bridge.connections.count),
                            sawPeerTrafficAtMilliseconds: (node.detector.lastEvidence?.nanoseconds ?? 0) / 1_000_000,
                            capabilities: .thisBuild
                        )
                    ),
                    now: now
                )
            case .probeServiceAddress:
                do {
                    try context.arp.sendProbe(address: configuration.serviceAddress)
                    node.probeSent(now: MonotonicClock.now())
                    count("arpProbes")
                } catch {
                    // An unanswered probe counts as "nobody holds it" only if it left: a probe
                    // that could not be sent proves nothing, so the round starts over.
                    count("arpProbeErrors")
                    logger.error(
                        "ARP probe for the service address failed; not taking over on this round",
                        metadata: ["error": "\(error)"]
                    )
                    node.probeFailed(error: "\(error)", now: now)
                }
            case .startTranslating:
                let inherited = bridge.promote()
                logger.notice(
                    "taking over the service address",
                    metadata: [
                        "service": "\(configuration.serviceAddress)", "inherited_connections": "\(inherited.count)",
                        "reason": "\(takeover.reason)",
                    ]
                )
            case .claimServiceAddress:
                // How long the service was silent for its clients: from the primary's last word
                // (heartbeat or segment) to this claim.
                takeoverSilenceMilliseconds = now.milliseconds(since: node.detector.lastHeard ?? now)
                for address in configuration.serviceAddresses {
                    do {
                        let result = try context.claim.claim(address: address)
                        addressClaimed = true
                        logger.notice(
                            "service address claimed",
                            metadata: ["address": "\(address)", "result": "\(result)"]
                        )
                    } catch {
                        logger.critical(
                            "could not claim the service address: clients cannot reach this host on it",
                            metadata: ["address": "\(address)", "error": "\(error)"]
                        )
                    }
                }
            case .announceServiceAddress:
                for address in configuration.serviceAddresses {
                    do {
                        try context.arp.announce(address: address)
                        count("gratuitousARPs")
                    } catch {
                        logger.warning(
                            "gratuitous ARP failed",
                            metadata: ["address": "\(address)", "error": "\(error)"]
                        )
                    }
                }
            case .stopCapture:
                if let current = capture {
                    context.poller.unregister(current.fileDescriptor)
                    if configuration.separateServiceAddress != nil {
                        // Closing a capture takes tens of milliseconds (its ring is unmapped): the
                        // primary this node becomes closes it once its loop runs.
                        captureToClose = current
                    } else {
                        current.close()
                    }
                    capture = nil
                }
            case .restartFlows:
                // The client's latest acknowledgments first (the capture may hold some this turn
                // has not read): the restart then begins where the client stands, not with bytes
                // it already has, ahead of the ones it waits for.
                if let current = capture { handleCapture(current, raw: context.raw, now: now) }
                let packets = bridge.restartPackets()
                var failed = 0
                for packet in packets {
                    do { try context.raw.send(packet) } catch { failed += 1 }
                }
                counters["restartSendErrors", default: 0] += UInt64(failed)
                logger.notice(
                    "restarted inherited flows",
                    metadata: [
                        "connections": "\(bridge.counters.restartedConnections)", "packets": "\(packets.count)",
                        "send_errors": "\(failed)",
                    ]
                )
            case let .primarySilent(milliseconds):
                logger.warning("primary bridge silent", metadata: ["silence_ms": "\(milliseconds)"])
            case let .primaryHeard(whilePromoted, wasSuspected):
                reportedAddressHeld = false
                if whilePromoted {
                    logger.critical(
                        """
                        the primary's bridge is speaking again while this host holds the service address: it yields as \
                        soon as it finds the address held (its ARP probe); this bridge keeps serving and announces the \
                        address again
                        """
                    )
                } else if wasSuspected {
                    logger.notice("primary bridge heard again; no takeover")
                }
            case let .addressUsedElsewhere(owner, response):
                noteAddressUsed(by: owner, response: response, now: now)
            case .becomePrimary:
                // A service address of its own: this node now serves as primary (and takes its
                // repaired peer back as the secondary), its queues, rules and sockets handed on.
                handOff = TakeoverHandOff(
                    inherited: InheritedConnections(
                        serviceAddress: configuration.serviceAddress,
                        nodeAddress: configuration.ownAddress,
                        keys: bridge.inherited,
                        serviceAddresses: bridge.inheritedServiceAddresses,
                        closing: bridge.inheritedClosing,
                        now: now
                    ),
                    outbound: context.outbound,
                    inbound: context.inbound,
                    since: now,
                    planned: takeover.wasHandedOver,
                    silenceMilliseconds: takeoverSilenceMilliseconds,
                    sockets: .init(
                        replication: context.link.socket,
                        arp: context.arp,
                        raw: context.raw,
                        control: context.control,
                        captureToClose: captureToClose
                    )
                )
            case .expire:
                // As long as the primary keeps them: an idle connection must still be inherited.
                bridge.expire(now: now, idleMilliseconds: configuration.bridgeConfiguration.idleTimeoutMilliseconds)
            case .serveAlone, .replicate, .secondaryRestarted, .fence, .switchoverAskedByPeer, .switchoverRefused,
                .releaseServiceAddress, .becomeSecondary:
                break
            }
        }
    }

    /// Another host uses the service address: before a takeover it still holds it (no
    /// takeover); after one, this node announces it again, so clients keep sending here.
    private func noteAddressUsed(by owner: String, response: NodeController.ConflictResponse, now: MonotonicTime) {
        switch response {
        case .noTakeover:
            if now.milliseconds(since: takeover.since ?? now) < 1000 {
                throttle.warning(
                    "held",
                    """
                    primary bridge silent, but \(owner) still answers ARP for \(configuration.serviceAddress): not taking \
                    over (its bridge may be busy, or cut off from this one); asking again, less and less often, up to \
                    every \(configuration.takeoverProbes.reprobeIntervalMilliseconds) ms
                    """,
                    metadata: [:],
                    logger: logger,
                    now: now
                )
            } else if !reportedAddressHeld {
                reportedAddressHeld = true
                logger.error(
                    """
                    the primary's bridge has been silent for over a second while \(owner) still answers ARP for \
                    \(configuration.serviceAddress): this bridge does not take over, so that two hosts never answer for \
                    it. If the primary is broken, stop its host or remove the address from it, and this bridge takes \
                    over within \(configuration.takeoverProbes.reprobeIntervalMilliseconds + configuration.takeoverProbes.roundMilliseconds) ms.
                    """
                )
            }
        case .announcedAgain:
            count("addressConflictsWhilePromoted")
            throttle.warning(
                "conflict",
                "\(owner) uses the service address this host serves: announcing it again",
                metadata: ["address": "\(configuration.serviceAddress)"],
                logger: logger,
                now: now
            )
        default:
            break
        }
    }

    /// Takes the hardware address a primary's heartbeat names, and says when it changes.
    private func learnPrimaryHardwareAddress(_ octets: [UInt8]?) {
        guard let octets, let address = MACAddress(octets), address != primaryHardwareAddress else { return }
        logger.info(
            "capture admits client frames to the primary's hardware address",
            metadata: [
                "hardware_address": "\(address)",
                "previous": "\(primaryHardwareAddress.map { "\($0)" } ?? "none")",
            ]
        )
        primaryHardwareAddress = address
    }

    /// Frames seen on the wire: clients' segments are readdressed and fed to the local kernel;
    /// the primary's segments to clients only show that it is alive.
    private func handleCapture(_ capture: PacketCapture, raw: RawIPv4Socket, now: MonotonicTime) {
        for _ in 0..<8 {
            let handled: Int
            do {
                handled = try capture.dispatch(maxPackets: 256) { frame in
                    guard let view = try? TCPPacket(validating: frame.packet, allowTrailingBytes: true) else {
                        count("capturedMalformed")
                        return
                    }
                    if configuration.serviceAddresses.contains(view.ip.source) {
                        // Counted, not believed: an unauthenticated frame is no proof that the
                        // primary lives (a forged one every few milliseconds would block every
                        // takeover). Only its bridge's authenticated messages are.
                        count("primarySegmentsSeen")
                        return
                    }
                    // Only what the primary's kernel also accepts (see CapturedFrame).
                    switch frame.refusal(of: view, primary: primaryHardwareAddress) {
                    case nil: break
                    case .notAddressedToPrimary?:
                        count("capturedNotToPrimary")
                        return
                    case .badChecksum?:
                        count("capturedBadChecksum")
                        return
                    }
                    trace?.record(.secondaryCaptured, view, clientPortIsDestination: false)
                    guard bridge.capturedClientSegment(view, now: now) == .inject else { return }
                    if configuration.segmentationOffload, view.tcp.payloadLength > 0,
                        view.ip.headerLength == IPv4Packet.minimumHeaderLength
                    {
                        pendingInjection.append(TCPPacketFields(parsing: view))
                        trace?.wait(.secondaryInjected, view, clientPortIsDestination: false)
                        return
                    }
                    // Anything else keeps its place behind the data captured before it.
                    injectPending(raw: raw, now: now)
                    trace?.record(.secondaryInjected, view, clientPortIsDestination: false)
                    inject(UnsafeRawBufferPointer(view.bytes), raw: raw, now: now)
                }
            } catch {
                injectPending(raw: raw, now: now)
                count("captureErrors")
                logger.error("capture failed", metadata: ["error": "\(error)"])
                return
            }
            injectPending(raw: raw, now: now)
            if handled < 256 { return }
        }
    }

    /// Injects the pending data segments, each run of one connection's contiguous segments as
    /// one segment of up to 64 KiB: one system call and one pass through the kernel's TCP per
    /// run instead of per segment. It reaches the kernel through `lo`, whose MTU takes it whole.
    private func injectPending(raw: RawIPv4Socket, now: MonotonicTime) {
        guard !pendingInjection.isEmpty else { return }
        defer { pendingInjection.removeAll(keepingCapacity: true) }
        trace?.recordWaiting(at: .secondaryInjected)
        for run in SegmentCoalescing.runs(pendingInjection, maximumSegments: maximumSegmentsPerGatheredSend) {
            guard run.segments.count > 1 else {
                // A segment alone (most often a small request): built whole into the scratch
                // buffer, as copying its bytes costs less than taking views of them to gather.
                injectionScratch.withUnsafeMutableBytes { buffer in
                    guard let length = try? pendingInjection[run.segments.lowerBound].build(into: buffer) else {
                        count("injectErrors")
                        return
                    }
                    inject(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), raw: raw, now: now)
                }
                continue
            }
            counters["injectedRuns", default: 0] += 1
            let header = SegmentCoalescing.header(of: run, in: pendingInjection)
            // The payloads stay where the capture put them: the headers are built into the
            // scratch buffer, the checksum summed over the pieces, and the kernel gathers them.
            pendingInjection.withPayloads(in: run.segments) { pieces in
                injectionScratch.withUnsafeMutableBytes { buffer in
                    guard let length = try? header.buildHeaders(into: buffer, payloadLength: run.payloadLength) else {
                        count("injectErrors")
                        return
                    }
                    let headers = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
                    GatheredChecksum.store(headers: headers, payload: pieces)
                    inject(UnsafeRawBufferPointer(headers), pieces, raw: raw, now: now)
                }
            }
        }
    }

    private func inject(
        _ packet: UnsafeRawBufferPointer,
        _ payload: [UnsafeRawBufferPointer] = [],
        raw: RawIPv4Socket,
        now: MonotonicTime
    ) {
        do {
            try raw.send(headers: packet, payload: payload)
        } catch {
            count("injectErrors")
            throttle.warning(
                "inject",
                "injecting a client segment failed",
                metadata: ["error": "\(error)", "bytes": "\(payload.reduce(packet.count) { $0 + $1.count })"],
                logger: logger,
                now: now
            )
        }
    }

    /// The local kernel's segments to clients: diverted to the primary while replicating;
    /// after the takeover, inherited connections' segments leave from the service address.
    private func handleOwnKernel(_ queue: NetfilterQueue, link: ReplicationLink, now: MonotonicTime) throws {
        try queue.drain { packet in
            if packet.isTruncated {
                // Longer than the kernel copies (NetfilterQueue.maximumCopyRange): never passed on
                // unread; its sender sends the bytes again.
                count("truncatedDropped")
                return .init(id: packet.id, .drop)
            }
            // Rewritten, if at all, where the kernel wrote it.
            guard let view = try? TCPPacket(validating: packet.bytes) else {
                // Fail closed: the kernel must not talk to a client directly.
                count("ownKernelMalformed")
                return .init(id: packet.id, .drop)
            }
            if bridge.isPromoted {
                if packet.checksumNotReady { view.updateChecksums() }
                return bridge.promotedKernelSegment(view, now: now)
                    ? .init(id: packet.id, .accept, replacement: UnsafeRawBufferPointer(packet.bytes))
                    : .init(id: packet.id, .accept)
            }
            // What became of the segment: relayed as it is, relayed in pieces (a GSO
            // super-segment larger than a relayed packet may be), relayed as digests of its
            // bytes (`--relay digests`), or not protected.
            var digested: [DigestedRelay] = []
            let handled: (verdict: KernelVerdict, pieces: [[UInt8]]?) = {
                trace?.record(.secondaryKernelOut, view, clientPortIsDestination: true)
                bridge.primaryReadsDigests = link.peerCapabilities.contains(.digests)
                let digestible = bridge.isDigestible(view)
                let verdict = bridge.ownKernelSegment(view, now: now)
                if verdict == .relayToPrimary {
                    trace?.wait(.secondaryRelayed, view, clientPortIsDestination: true)
                }
                if verdict == .relayToPrimary && digestible {
                    digested = bridge.digestedRelay(
                        view,
                        digester: PayloadDigests.sha256,
                        maximumPieces: relayBundle.maximumDigestsPerSegment
                    )
                    if !digested.isEmpty { return (verdict, []) }
                }
                guard verdict == .relayToPrimary else { return (verdict, nil) }
                // Relayed as its bytes: with the checksum its kernel left to the offload. Only
                // here, which saves a pass over every byte the secondary sends: a digested
                // segment's bytes never leave as they are kept (its resend and its restart copy
                // get their checksums computed then), and a passed one keeps the offload's.
                if packet.checksumNotReady { view.updateChecksums() }
                guard view.bytes.count > relayBundle.maximumPacketBytes else { return (verdict, nil) }
                let limit = configuration.relayBundleBytes == 0 ? nil : relayBundle.maximumPacketBytes
                return (verdict, bridge.relayPackets(view, maximumPacketBytes: limit))
            }()
            if !digested.isEmpty {
                count("relayedAsDigests")
                for relay in digested {
                    for message in relayBundle.add(digested: PayloadDigests.segment(relay)) {
                        link.send(message, now: now)
                    }
                }
                return .init(id: packet.id, .drop)
            }
            switch handled {
            case (.relayToPrimary, let pieces?):
                count("relayedSuperSegments")
                for piece in pieces { relay(piece, link: link, now: now) }
                return .init(id: packet.id, .drop)
            case (.relayToPrimary, nil):
                relay(packet.payload, link: link, now: now)
                return .init(id: packet.id, .drop)
            case (.pass, _):
                return .init(id: packet.id, .accept)
            case (.drop, _):
                count("ownKernelDropped")
                return .init(id: packet.id, .drop)
            }
        } beforeVerdicts: {
            flushRelayBundle(link: link, now: now)
        }
    }

    /// Adds one of the kernel's segments to the bundle for the primary, sending the bundle
    /// first if this segment would take it past the configured datagram size.
    private func relay(_ packet: [UInt8], link: ReplicationLink, now: MonotonicTime) {
        for message in relayBundle.add(packet) { link.send(message, now: now) }
    }

    /// A packet the kernel sent before, relayed whole again, cut to fit a datagram as it would
    /// have been when it was sent.
    /// Its checksum is computed again: a segment that was relayed as digests is kept with the
    /// checksum its kernel left to the offload.
    private func relayWhole(_ packet: [UInt8], link: ReplicationLink, now: MonotonicTime) {
        var bytes = packet
        let limit = configuration.relayBundleBytes == 0 ? nil : relayBundle.maximumPacketBytes
        let pieces: [[UInt8]]? = bytes.withUnsafeMutableBytes { buffer in
            guard let view = try? TCPPacket(validating: buffer) else { return [] }
            view.updateChecksums()
            return buffer.count > relayBundle.maximumPacketBytes
                ? bridge.relayPackets(view, maximumPacketBytes: limit) : nil
        }
        for piece in pieces ?? [bytes] { relay(piece, link: link, now: now) }
    }

    private func flushRelayBundle(link: ReplicationLink, now: MonotonicTime) {
        trace?.recordWaiting(at: .secondaryRelayed)
        for message in relayBundle.flushAll() { link.send(message, now: now) }
    }

    /// Clients' segments to the service address, which only reach this host after the
    /// takeover: inherited connections go to the secondary's own address.
    private func handleClients(_ queue: NetfilterQueue, now: MonotonicTime) throws {
        try queue.drain { packet in
            if packet.isTruncated {
                // Longer than the kernel copies (NetfilterQueue.maximumCopyRange): never passed on
                // unread; its sender sends the bytes again.
                count("truncatedDropped")
                return .init(id: packet.id, .drop)
            }
            guard let view = try? TCPPacket(validating: packet.bytes) else { return .init(id: packet.id, .accept) }
            let changed = bridge.promotedClientSegment(view, now: now)
            if changed && packet.checksumNotReady { view.updateChecksums() }
            return changed
                ? .init(id: packet.id, .accept, replacement: UnsafeRawBufferPointer(packet.bytes))
                : .init(id: packet.id, .accept)
        }
    }

    /// A control request: `status`, or `switchover` (passed on to the primary in heartbeats).
    private func answer(_ request: String, link: ReplicationLink, capture: PacketCapture?, now: MonotonicTime) -> String
    {
        switch request {
        case "status":
            return status(link: link, capture: capture, now: now).json()
        case "switchover":
            if let refusal = node.switchoverRequested(
                by: "the operator",
                force: false,
                unreplicatedConnections: 0,
                now: now
            ) {
                return ControlAnswer(request: request, outcome: "refused", detail: refusal).json()
            }
            return ControlAnswer(
                request: request,
                outcome: "requested",
                detail: """
                    asked the primary \(configuration.peerAddress) to hand the service address to this node (it refuses \
                    while it has open connections without a replica here; see its log)
                    """
            ).json()
        default:
            return ControlAnswer.unknown(request).json()
        }
    }

    private func handleReplication(
        _ message: ReplicationMessage,
        raw: RawIPv4Socket,
        link: ReplicationLink,
        now: MonotonicTime
    ) {
        if case let .relayWhole(connections) = message {
            // The primary serves these from this kernel's bytes now: whole from here on, and
            // what the client has not acknowledged again (it had only digests of it).
            let packets = bridge.relayWhole(
                connections.map {
                    ConnectionKey(
                        clientAddress: IPv4Address($0.clientAddress),
                        clientPort: $0.clientPort,
                        serverPort: $0.serverPort
                    )
                }
            )
            counters["resentWhole", default: 0] += UInt64(packets.count)
            for packet in packets { relayWhole(packet, link: link, now: now) }
            flushRelayBundle(link: link, now: now)
            return
        }
        if case let .released(connections) = message {
            bridge.release(
                connections.map {
                    ConnectionKey(
                        clientAddress: IPv4Address($0.clientAddress),
                        clientPort: $0.clientPort,
                        serverPort: $0.serverPort
                    )
                }
            )
            return
        }
        guard case let .inject(packet) = message else { return }
        var bytes = packet
        bytes.withUnsafeMutableBytes { buffer in
            guard let view = try? TCPPacket(validating: buffer), bridge.packetFromPrimary(view) == .inject else {
                count("injectRefused")
                return
            }
            do { try raw.send(UnsafeRawBufferPointer(view.bytes)) } catch { count("injectErrors") }
        }
    }

    private func count(_ name: String) { counters[name, default: 0] += 1 }

    /// The bridge's state; `withConnections: false` leaves the per-connection list out.
    func status(
        link: ReplicationLink,
        capture: PacketCapture?,
        now: MonotonicTime,
        withConnections: Bool = true
    ) -> DaemonStatus {
        var all = counters
        let c = bridge.counters
        all["injected"] = c.injected
        all["relayedToPrimary"] = c.relayed
        all["ignoredNotForService"] = c.ignoredNotForService
        all["ignoredUnprotectedPort"] = c.ignoredUnprotectedPort
        all["ignoredUnknownOutbound"] = c.ignoredUnknownOutbound
        all["droppedUntrackedOutboundSYNs"] = c.droppedUntrackedOutboundSYNs
        all["injectedFromPrimary"] = c.injectedFromPrimary
        all["refusedFromPrimary"] = c.refusedFromPrimary
        all["promotedTranslatedIn"] = c.promotedTranslatedIn
        all["promotedTranslatedOut"] = c.promotedTranslatedOut
        all["retainedBytes"] = UInt64(bridge.retainedBytes)
        all["notRetained"] = c.notRetained
        all["releasedByPrimary"] = c.releasedByPrimary
        all["ignoredCollidingAddress"] = c.ignoredCollidingAddress
        all["untrackedConnections"] = c.untrackedConnections
        all["evicted"] = c.evicted
        all["unacceptableResets"] = c.unacceptableResets
        all["restartPackets"] = c.restartPackets
        all["restartedConnections"] = c.restartedConnections
        if let stats = try? capture?.statistics {
            all["captureReceived"] = stats.received
            all["captureDropped"] = stats.dropped
            all["captureInterfaceDropped"] = stats.interfaceDropped
            all["captureTruncated"] = stats.truncated
            all["captureMalformed"] = stats.malformed
            all["captureOutgoing"] = stats.outgoing
        }
        let promoted = bridge.isPromoted
        let connections =
            !withConnections
            ? []
            : bridge.connections.map { entry in
                DaemonStatus.ConnectionEntry(
                    client: "\(entry.key.clientAddress)",
                    clientPort: entry.key.clientPort,
                    serverPort: entry.key.serverPort,
                    phase: promoted ? (bridge.inherited.contains(entry.key) ? "inherited" : "native") : "replicating",
                    protected: !promoted,
                    delta: nil,
                    timestampDelta: nil,
                    queuedPrimaryBytes: nil,
                    queuedSecondaryBytes: nil,
                    bytesSentToClient: nil,
                    bytesFromClient: entry.activity.bytesFromClient,
                    bytesRelayedToPrimary: entry.activity.bytesRelayed,
                    retransmissionsForwarded: nil,
                    divergences: nil,
                    sequence: nil,
                    service: "\(entry.activity.serviceAddress)",
                    direction: entry.activity.opensOutbound ? "outbound" : "inbound"
                )
            }
        return DaemonStatus(
            role: "secondary",
            state: takeover.state.name,
            stateReason: takeover.reason,
            stateSinceSeconds: Double(now.milliseconds(since: takeover.since ?? started)) / 1000,
            uptimeSeconds: Double(now.milliseconds(since: started)) / 1000,
            peer: link.peerStatus(now: now, detector: node.detector),
            counters: all,
            replication: link.counters,
            connections: Array(connections.prefix(DaemonStatus.listedConnectionLimit)),
            connectionsNotListed: max(0, connections.count - DaemonStatus.listedConnectionLimit),
            connectionsByKind: [
                "protected": promoted ? 0 : bridge.connectionCount,
                "inherited": promoted ? bridge.connectionCount : 0,
            ]
        )
    }
}
