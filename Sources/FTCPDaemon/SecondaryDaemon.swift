import FTCPBridge
import FTCPLinux
import FTCPReplication
import FTCPWire
import Logging

/// Runs the secondary bridge: a promiscuous capture of clients' segments to
/// the primary, injected into the secondary's own kernel readdressed to it;
/// NFQUEUE for its kernel's segments to clients, which go to the primary over
/// the replication channel instead of the wire.
public final class SecondaryDaemon {
    let configuration: DaemonConfiguration
    let logger: Logger
    var bridge: SecondaryBridge
    var counters: [String: UInt64] = [:]
    private let started = MonotonicClock.now()

    public init(configuration: DaemonConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        bridge = SecondaryBridge(configuration: configuration.bridgeConfiguration)
    }

    public func run() throws {
        try TerminationSignals.install()
        let outbound = try NetfilterQueue.open(queue: configuration.outboundQueue, options: Self.queueOptions)
        let capture = try PacketCapture(interface: configuration.interface, filter: configuration.captureFilter)
        let raw = try RawIPv4Socket(mark: configuration.bypassMark)
        let link = try ReplicationLink(configuration: configuration, logger: logger)
        let firewall = Firewall()
        try firewall.install(configuration.firewallPlan)
        // The control socket appears last: once it answers, the bridge is in the path.
        let control: ControlSocket
        do {
            control = try ControlSocket(path: configuration.controlPath)
        } catch {
            firewall.remove(role: .secondary)
            throw error
        }
        defer {
            firewall.remove(role: .secondary)
            control.close()
            capture.close()
            try? outbound.close()
            logger.info("secondary stopped; rules removed")
        }
        logger.info("secondary running", metadata: [
            "own": "\(configuration.ownAddress)", "primary": "\(configuration.peerAddress)",
            "interface": "\(configuration.interface)", "filter": "\(configuration.captureFilter)",
            "control": "\(configuration.controlPath)", "key": "\(configuration.key.fingerprint)",
        ])

        let poller = Poller()
        poller.register(outbound.fileDescriptor)
        poller.register(capture.fileDescriptor)
        poller.register(link.fileDescriptor)
        poller.register(control.fileDescriptor)
        var nextHeartbeat = MonotonicClock.now()
        var nextExpiry = nextHeartbeat.adding(milliseconds: 1000)

        while TerminationSignals.received == nil {
            let ready = try poller.wait(timeoutMilliseconds: Int32(configuration.heartbeatIntervalMilliseconds))
            let now = MonotonicClock.now()
            if ready.contains(capture.fileDescriptor) {
                handleCapture(capture, raw: raw, now: now)
            }
            if ready.contains(outbound.fileDescriptor) {
                try handleOwnKernel(outbound, link: link, now: now)
            }
            if ready.contains(link.fileDescriptor) {
                link.receiveAll(now: now) { message in handleReplication(message, raw: raw) }
            }
            if ready.contains(control.fileDescriptor) {
                control.answerPending { status(link: link, capture: capture, now: now).json() }
            }
            if nextHeartbeat <= now {
                link.send(.heartbeat(ReplicationHeartbeat(
                    sentAtMilliseconds: now.nanoseconds / 1_000_000, state: 1,
                    connectionCount: UInt32(clamping: bridge.connections.count), sawPeerTrafficAtMilliseconds: 0)), now: now)
                nextHeartbeat = now.adding(milliseconds: configuration.heartbeatIntervalMilliseconds)
            }
            if nextExpiry <= now {
                bridge.expire(now: now, idleMilliseconds: 600_000)
                nextExpiry = now.adding(milliseconds: 1000)
            }
        }
        logger.notice("secondary stopping", metadata: ["signal": "\(TerminationSignals.received ?? 0)"])
    }

    /// Clients' frames seen on the wire: readdressed and fed to the local kernel.
    private func handleCapture(_ capture: PacketCapture, raw: RawIPv4Socket, now: MonotonicTime) {
        for _ in 0..<8 {
            let handled: Int
            do {
                handled = try capture.dispatch(maxPackets: 256) { buffer in
                    guard let view = try? TCPPacket(validating: buffer, allowTrailingBytes: true) else {
                        count("capturedMalformed")
                        return
                    }
                    guard bridge.capturedClientSegment(view, now: now) == .inject else { return }
                    do {
                        try raw.send(UnsafeRawBufferPointer(view.bytes))
                    } catch {
                        count("injectErrors")
                        logger.warning("injecting a client segment failed", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                count("captureErrors")
                logger.error("capture failed", metadata: ["error": "\(error)"])
                return
            }
            if handled < 256 { return }
        }
    }

    /// The local kernel's segments to clients: diverted to the primary.
    private func handleOwnKernel(_ queue: NetfilterQueue, link: ReplicationLink, now: MonotonicTime) throws {
        for _ in 0..<8 {
            let packets = try queue.receive(maxPackets: 128, timeout: .zero)
            if packets.isEmpty { return }
            var verdicts: [NetfilterQueue.VerdictRequest] = []
            verdicts.reserveCapacity(packets.count)
            for packet in packets {
                var bytes = packet.payload
                let verdict: KernelVerdict? = bytes.withUnsafeMutableBytes { buffer in
                    guard let view = try? TCPPacket(validating: buffer) else { return nil }
                    if packet.checksumNotReady { view.updateChecksums() }
                    return bridge.ownKernelSegment(view, now: now)
                }
                switch verdict {
                case .relayToPrimary:
                    link.send(.segment(packet: bytes), now: now)
                    verdicts.append(.init(id: packet.id, .drop))
                case .pass:
                    verdicts.append(.init(id: packet.id, .accept))
                case nil:
                    // Fail closed: the kernel must not talk to a client directly.
                    count("ownKernelMalformed")
                    verdicts.append(.init(id: packet.id, .drop))
                }
            }
            try queue.setVerdicts(verdicts)
        }
    }

    private func handleReplication(_ message: ReplicationMessage, raw: RawIPv4Socket) {
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

    func status(link: ReplicationLink, capture: PacketCapture, now: MonotonicTime) -> DaemonStatus {
        var all = counters
        let c = bridge.counters
        all["injected"] = c.injected
        all["relayedToPrimary"] = c.relayed
        all["ignoredNotForService"] = c.ignoredNotForService
        all["ignoredUnprotectedPort"] = c.ignoredUnprotectedPort
        all["injectedFromPrimary"] = c.injectedFromPrimary
        all["refusedFromPrimary"] = c.refusedFromPrimary
        if let stats = try? capture.statistics {
            all["captureReceived"] = stats.received
            all["captureDropped"] = stats.dropped
            all["captureInterfaceDropped"] = stats.interfaceDropped
            all["captureTruncated"] = stats.truncated
            all["captureMalformed"] = stats.malformed
        }
        let connections = bridge.connections.map { entry in
            DaemonStatus.ConnectionEntry(
                client: "\(entry.key.clientAddress)", clientPort: entry.key.clientPort, serverPort: entry.key.serverPort,
                phase: "replicating", protected: true, delta: nil, timestampDelta: nil,
                queuedPrimaryBytes: nil, queuedSecondaryBytes: nil, bytesSentToClient: nil,
                bytesFromClient: entry.activity.bytesFromClient, bytesRelayedToPrimary: entry.activity.bytesRelayed,
                retransmissionsForwarded: nil, divergences: nil, sequence: nil)
        }
        return DaemonStatus(
            role: "secondary", state: "replicating", stateSinceSeconds: Double(now.milliseconds(since: started)) / 1000,
            uptimeSeconds: Double(now.milliseconds(since: started)) / 1000,
            peer: link.peerStatus(now: now, aliveWithinMilliseconds: configuration.heartbeatIntervalMilliseconds * 5),
            counters: all, replication: link.counters, connections: connections)
    }
}
