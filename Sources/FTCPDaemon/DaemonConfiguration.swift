import FTCPBridge
import FTCPLinux
import FTCPReplication
import FTCPWire
import Logging

/// Everything a running bridge needs, resolved from the command line.
public struct DaemonConfiguration: Sendable {
    public var role: ReplicationRole
    /// The interface on the segment shared with clients and the peer (for capture).
    public var interface: String
    /// This host's address. Without a separate service address it is also the service address
    /// on the primary (the older form, in which roles never swap).
    public var ownAddress: IPv4Address
    /// The address clients connect to, when it is not a node's own (`--service-address`): the
    /// node that serves as primary adds it to its interface and announces it, the secondary
    /// never holds it until it takes over, and roles can swap (a node that took over serves as
    /// primary, and its repaired peer rejoins as the secondary).
    public var separateServiceAddress: IPv4Address?
    /// More service addresses of its own (`--service-address` given again): they move with the
    /// first, which alone is probed for and watched.
    public var additionalServiceAddresses: [IPv4Address]
    /// `--missed-heartbeats` as given (nil: the role's default), kept for a change of role.
    public var missedHeartbeatsGiven: UInt64?
    /// The other bridge's address.
    public var peerAddress: IPv4Address
    public var ports: [UInt16]
    public var key: ReplicationKey
    public var controlPath: String
    /// UDP port of the replication channel, the same on both bridges.
    public var replicationPort: UInt16
    /// NFQUEUE number for the local kernel's segments to clients.
    public var outboundQueue: UInt16
    /// NFQUEUE number for clients' segments to the primary's kernel.
    public var inboundQueue: UInt16
    /// Mark on the packets the bridge sends itself, so its rules skip them.
    public var bypassMark: UInt32
    public var heartbeatIntervalMilliseconds: UInt64
    /// Heartbeats missed in a row before the peer counts as failed.
    public var missedHeartbeats: UInt64
    /// How the secondary makes sure nobody holds the service address before taking it.
    public var takeoverProbes: TakeoverCoordinator.ProbeSettings
    /// Prefix length of the service address when the secondary claims it.
    public var servicePrefixLength: Int
    /// On SIGINT/SIGTERM with connections open, the primary releases the service address so
    /// the secondary takes them over (a planned hand-over, for upgrades and maintenance).
    public var handOverOnStop: Bool
    /// Super-packets on every path that can take them: the bridges' queues take GSO and GRO
    /// packets whole (``superPacketQueueOptions``); the primary hands runs of merged segments to
    /// its kernel as one super-segment that the kernel cuts up again (generic segmentation
    /// offload through a packet socket on `interface`); the secondary injects a run of a
    /// client's captured segments as one segment (as GRO would).
    public var segmentationOffload: Bool
    /// The secondary relays the segments its kernel sends in a burst together, in datagrams of
    /// at most this many bytes (fewer datagrams, fragments filled to the MTU); 0 relays each
    /// segment in a datagram of its own.
    public var relayBundleBytes: Int
    /// The secondary relays the new bytes its kernel sends as digests, not the bytes
    /// (`--relay digests`); both nodes must have it alike, since roles swap.
    public var relaysDigests: Bool
    /// Where each bridge writes, when it stops, when it handled each data segment (a
    /// ``LatencyTrace``, for `ftcp-bridge latency-report`); nil: nothing is recorded.
    public var latencyTraceDirectory: String?
    /// Connections the servers' applications open that are replicated (`--protect-outbound`, §7.2).
    public var outboundSelections: [OutboundSelection]
    /// What a difference between the servers' bytes costs a connection (`--divergence`).
    public var divergencePolicy: DivergencePolicy
    /// Bounds for the bridge core.
    public var maximumConnections: Int
    public var maximumQueuedBytesPerServer: Int

    public init(
        role: ReplicationRole,
        interface: String,
        ownAddress: IPv4Address,
        peerAddress: IPv4Address,
        ports: [UInt16],
        key: ReplicationKey,
        controlPath: String,
        replicationPort: UInt16 = 7400,
        outboundQueue: UInt16 = 7401,
        inboundQueue: UInt16 = 7402,
        bypassMark: UInt32 = 0x4654,
        heartbeatIntervalMilliseconds: UInt64 = 10,
        missedHeartbeats: UInt64? = nil,
        takeoverProbes: TakeoverCoordinator.ProbeSettings = .init(),
        servicePrefixLength: Int = 24,
        maximumConnections: Int = 16_384,
        maximumQueuedBytesPerServer: Int = 8 << 20,
        handOverOnStop: Bool = false,
        segmentationOffload: Bool = true,
        relayBundleBytes: Int = DaemonConfiguration.defaultRelayBundleBytes,
        separateServiceAddress: IPv4Address? = nil,
        additionalServiceAddresses: [IPv4Address] = [],
        outboundSelections: [OutboundSelection] = [],
        divergencePolicy: DivergencePolicy = .strict,
        relaysDigests: Bool = true,
        latencyTraceDirectory: String? = nil
    ) {
        self.relaysDigests = relaysDigests
        self.latencyTraceDirectory = latencyTraceDirectory
        self.outboundSelections = outboundSelections
        self.divergencePolicy = divergencePolicy
        self.separateServiceAddress = separateServiceAddress
        self.additionalServiceAddresses =
            separateServiceAddress == nil ? [] : additionalServiceAddresses.filter { $0 != separateServiceAddress }
        self.role = role
        self.interface = interface
        self.ownAddress = ownAddress
        self.peerAddress = peerAddress
        self.ports = ports
        self.key = key
        self.controlPath = controlPath
        self.replicationPort = replicationPort
        self.outboundQueue = outboundQueue
        self.inboundQueue = inboundQueue
        self.bypassMark = bypassMark
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.missedHeartbeats = missedHeartbeats ?? Self.defaultMissedHeartbeats(role: role)
        self.missedHeartbeatsGiven = missedHeartbeats
        self.takeoverProbes = takeoverProbes
        self.servicePrefixLength = servicePrefixLength
        self.maximumConnections = maximumConnections
        self.maximumQueuedBytesPerServer = maximumQueuedBytesPerServer
        self.handOverOnStop = handOverOnStop
        self.segmentationOffload = segmentationOffload
        self.relayBundleBytes = relayBundleBytes
    }

    /// The UDP payload that fills one 1,500-byte frame (1,500 − 20 − 8): replication datagrams
    /// are never IP fragments. A fragment lost (or, in a partition, the first fragments dropped
    /// by a filter on the UDP port while the rest pass) leaves incomplete datagrams that hold
    /// the receiver's reassembly memory for 30 s (`ipfrag_time`); once that memory is full every
    /// relayed datagram is dropped, and protected connections hang for tens of seconds.
    public static let defaultRelayBundleBytes = 1_472

    /// Heartbeats missed before the peer counts as failed, when not told: 8 on the primary
    /// (its verdict ends the protection of every connection, so a busy secondary must not
    /// trip it), 2 on the secondary (its verdict only starts ARP probes, and a primary whose
    /// host still answers them is never taken over).
    public static func defaultMissedHeartbeats(role: ReplicationRole) -> UInt64 {
        role == .primary ? 8 : 2
    }

    /// The service address clients connect to.
    public var serviceAddress: IPv4Address { separateServiceAddress ?? (role == .primary ? ownAddress : peerAddress) }
    /// Every address clients connect to, the main one first.
    public var serviceAddresses: [IPv4Address] { [serviceAddress] + additionalServiceAddresses }
    public var secondaryAddress: IPv4Address { role == .primary ? peerAddress : ownAddress }
    /// Where this host's kernel's protected sockets are bound: the service address on the
    /// primary, its own address on the secondary (its kernel gets clients' segments readdressed).
    public var kernelAddress: IPv4Address { role == .primary ? serviceAddress : ownAddress }

    /// The same node in another role (after a takeover, or on a start that finds the peer serving).
    public func acting(as newRole: ReplicationRole) -> DaemonConfiguration {
        var copy = self
        copy.role = newRole
        copy.missedHeartbeats = missedHeartbeatsGiven ?? Self.defaultMissedHeartbeats(role: newRole)
        return copy
    }

    public var bridgeConfiguration: BridgeConfiguration {
        BridgeConfiguration(
            serviceAddress: serviceAddress,
            additionalServiceAddresses: additionalServiceAddresses,
            secondaryAddress: secondaryAddress,
            protectedPorts: Set(ports),
            maximumConnections: maximumConnections,
            maximumQueuedBytesPerServer: maximumQueuedBytesPerServer,
            outboundSelections: outboundSelections,
            divergencePolicy: divergencePolicy,
            relaysDigests: relaysDigests
        )
    }

    /// The outbound selections by local port.
    var outboundLocalPorts: [UInt16] {
        outboundSelections.compactMap { if case let .localPort(port) = $0 { port } else { nil } }
    }

    /// The outbound selections by remote endpoint.
    var outboundRemotes: [(address: IPv4Address, port: UInt16)] {
        outboundSelections.compactMap { if case let .remote(address, port) = $0 { (address, port) } else { nil } }
    }

    public var firewallPlan: FirewallPlan { firewallPlan(inheriting: false) }

    /// The rules; `inheriting`: on a primary that took over, also for the inherited connections
    /// (bound to this node's own address).
    public func firewallPlan(inheriting: Bool) -> FirewallPlan {
        FirewallPlan(
            role: role == .primary ? .primary : .secondary,
            ownAddress: kernelAddress,
            serviceAddresses: serviceAddresses,
            ports: ports,
            outboundQueue: outboundQueue,
            inboundQueue: inboundQueue,
            bypassMark: bypassMark,
            inheritedAddress: inheriting ? ownAddress : nil,
            replicationChannel: (peer: peerAddress, port: replicationPort),
            outboundLocalPorts: outboundLocalPorts,
            outboundRemotes: outboundRemotes
        )
    }

    /// The capture filter of the secondary: clients' TCP segments to the service on protected
    /// ports and the remote ends' of selected outbound connections, and the primary's segments to
    /// them (evidence that it is alive).
    public var captureFilter: String {
        let toService =
            (ports.sorted() + outboundLocalPorts.sorted()).map { "dst port \($0)" }
            + outboundRemotes.map { "(src host \($0.address) and src port \($0.port))" }
        let fromService =
            (ports.sorted() + outboundLocalPorts.sorted()).map { "src port \($0)" }
            + outboundRemotes.map { "(dst host \($0.address) and dst port \($0.port))" }
        let hosts = serviceAddresses.map(\.description).joined(separator: " or ")
        return "ip and tcp and not src host \(ownAddress) and "
            + "((dst host (\(hosts)) and (\(toService.joined(separator: " or ")))) or "
            + "(src host (\(hosts)) and (\(fromService.joined(separator: " or ")))))"
    }

    /// The node's control plane: detection in each role, the takeover's probes, whether roles swap.
    public var nodeConfiguration: NodeController.Configuration {
        NodeController.Configuration(
            heartbeatIntervalMilliseconds: heartbeatIntervalMilliseconds,
            primaryMissedHeartbeats: missedHeartbeatsGiven ?? Self.defaultMissedHeartbeats(role: .primary),
            secondaryMissedHeartbeats: missedHeartbeatsGiven ?? Self.defaultMissedHeartbeats(role: .secondary),
            takeoverProbes: takeoverProbes,
            rolesSwap: separateServiceAddress != nil
        )
    }

    public var faultDetection: FaultDetector.Configuration {
        FaultDetector.Configuration(
            heartbeatIntervalMilliseconds: heartbeatIntervalMilliseconds,
            missedHeartbeats: missedHeartbeats
        )
    }
}

extension NetfilterQueue.Options {
    /// What both bridges ask of their queues: a deep kernel queue (a burst of a whole
    /// congestion window must not overflow it) and a large socket buffer, no fail-open
    /// (a bridge that is not reading must silence protected traffic, not let it through).
    static let bridge = NetfilterQueue.Options(receiveBufferBytes: 64 << 20, maximumQueueLength: 16_384)
}

extension PrimaryDaemon {
    static var queueOptions: NetfilterQueue.Options { .bridge }
}

extension SecondaryDaemon {
    static var queueOptions: NetfilterQueue.Options { .bridge }
}

extension DaemonConfiguration {
    /// The options of a queue that, with segmentation offload, takes GSO and GRO super-packets
    /// whole (`NFQA_CFG_F_GSO`): one pass per 64 KiB instead of one per segment. Both bridges'
    /// queues of their kernel's segments to clients use it (neither sends such a packet on as
    /// it is: the primary sends what it merged or translated in pieces that fit the MSS, the
    /// secondary relays it in pieces that fit a datagram, and after a takeover the kernel cuts
    /// what it accepts back), and so does the primary's queue of clients' segments (it only
    /// rewrites headers and hands the packet back whole, its checksum recomputed in full, since
    /// GRO leaves only the pseudo-header sum in the field).
    var superPacketQueueOptions: NetfilterQueue.Options {
        var options = NetfilterQueue.Options.bridge
        options.acceptGSO = segmentationOffload
        return options
    }
}

extension DaemonConfiguration {
    /// Removes every service address from the interface; throws at the first that fails.
    func releaseServiceAddresses() throws(AddressClaimError) -> [AddressClaim.ReleaseResult] {
        let claim = AddressClaim(interface: interface, prefixLength: servicePrefixLength)
        var results: [AddressClaim.ReleaseResult] = []
        for address in serviceAddresses { results.append(try claim.release(address: address)) }
        return results
    }

    /// Removes every service address from the interface and says so; if that fails, says what
    /// it costs (`unlessReleased`) and the command that does it by hand.
    func releaseServiceAddress(reason: String, logger: Logger, unlessReleased: String? = nil) {
        for address in serviceAddresses {
            releaseServiceAddress(address, reason: reason, logger: logger, unlessReleased: unlessReleased)
        }
    }

    private func releaseServiceAddress(
        _ address: IPv4Address,
        reason: String,
        logger: Logger,
        unlessReleased: String?
    ) {
        do {
            let result = try AddressClaim(interface: interface, prefixLength: servicePrefixLength).release(
                address: address
            )
            logger.notice(
                "service address released (\(reason))",
                metadata: ["address": "\(address)", "result": "\(result)"]
            )
        } catch {
            logger.critical(
                """
                releasing the service address failed (\(error))\(unlessReleased.map { ": \($0)" } ?? ""). Remove it by \
                hand: ip addr del \(address)/\(servicePrefixLength) dev \(interface)
                """
            )
        }
    }
}
