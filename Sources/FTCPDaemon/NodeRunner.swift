import FTCPBridge
import FTCPLinux
import FTCPReplication
import Logging

/// What a secondary that took over hands to the primary it becomes (with a service address of
/// its own): the connections it inherited, and its queues, still bound, so no segment of theirs
/// is dropped between the two.
struct TakeoverHandOff {
    var inherited: InheritedConnections
    var outbound: NetfilterQueue
    var inbound: NetfilterQueue
    /// When the takeover happened.
    var since: MonotonicTime
    /// A planned switchover (the primary handed the address over), not a failover.
    var planned = false
    /// From the old primary's last word to the claim of the address.
    var silenceMilliseconds: UInt64 = 0
    /// The sockets the primary goes on with (opening them again would keep every inherited
    /// segment waiting meanwhile).
    var sockets: Sockets

    struct Sockets {
        var replication: UDPSocket
        var arp: ARPSocket
        var raw: RawIPv4Socket
        var control: ControlSocket
        /// Stopped, still to be closed.
        var captureToClose: PacketCapture?
    }
}

/// One node: picks its role at the start (``NodeStartPolicy``), runs it, and moves from one
/// role to the next. A secondary that took over a service address of its own goes on as
/// primary, serving its inherited connections unprotected and protecting those opened once a
/// new secondary (its repaired peer) has joined.
public enum NodeRunner {
    /// Runs until stopped; returns the exit status (``GuardianPolicy/fencedExitCode`` when the
    /// node gave the address up to its peer).
    public static func run(
        configuration: DaemonConfiguration,
        logger: Logger,
        guardian: GuardianLink?,
        metrics: BridgeMetrics? = nil
    ) throws -> Int32 {
        var role = try startRole(configuration, logger: logger)
        if role != configuration.role { guardian?.report(role: role == .primary ? "primary" : "secondary") }
        var handOff: TakeoverHandOff?
        // The node's control plane, carried from one role's loop to the next.
        var node: NodeController?
        while true {
            switch role {
            case .primary:
                let primary = PrimaryDaemon(
                    configuration: configuration.acting(as: .primary),
                    logger: logger,
                    guardian: guardian,
                    node: node,
                    handOff: handOff,
                    metrics: metrics
                )
                try primary.run()
                guard primary.handedOver, TerminationSignals.received == nil else {
                    return primary.fenced ? GuardianPolicy.fencedExitCode : 0
                }
                // A planned switchover: the peer serves now; this node protects it.
                handOff = nil
                node = primary.node
                role = .secondary
                guardian?.report(role: "secondary")
                logger.notice(
                    "this node now serves as the secondary of \(configuration.peerAddress) (planned switchover)"
                )
            case .secondary:
                let secondary = SecondaryDaemon(
                    configuration: configuration.acting(as: .secondary),
                    logger: logger,
                    guardian: guardian,
                    node: node,
                    metrics: metrics
                )
                guard let next = try secondary.run() else { return 0 }
                metrics?.noteTakeover(planned: next.planned, silenceMilliseconds: next.silenceMilliseconds)
                handOff = next
                node = secondary.node
                role = .primary
                guardian?.report(role: "primary")
                logger.notice(
                    """
                    this node now serves as primary: \(next.inherited.count) inherited connections are served \
                    unprotected until they close; connections opened once the peer rejoins as secondary are protected
                    """
                )
            }
        }
    }

    /// Asks the segment and this host who serves the service address, and decides.
    static func startRole(_ configuration: DaemonConfiguration, logger: Logger) throws -> ReplicationRole {
        guard let service = configuration.separateServiceAddress else { return configuration.role }
        let claim = AddressClaim(interface: configuration.interface, prefixLength: configuration.servicePrefixLength)
        let heldHere = try claim.isAddressPresent(address: service)
        let arp = try ARPSocket(interface: configuration.interface)
        defer { arp.close() }
        let holder = try arp.probe(address: service, timeoutMilliseconds: 200, holdersOnly: true)
        let decision = NodeStartPolicy.decide(
            configured: configuration.role,
            separateServiceAddress: true,
            heldByPeer: holder != nil,
            heldHere: heldHere
        )
        if let explanation = decision.explanation {
            logger.notice(
                "\(explanation)",
                metadata: ["service": "\(service)", "holder": "\(holder?.description ?? "this host")"]
            )
        }
        if decision.releaseLocalServiceAddress {
            for address in configuration.serviceAddresses {
                let result = try claim.release(address: address)
                logger.notice(
                    "service address released on this host",
                    metadata: ["address": "\(address)", "result": "\(result)"]
                )
            }
        }
        if decision.removeStalePrimaryRules, Firewall().remove(role: .primary) > 0 {
            logger.notice(
                """
                removed the primary's rules this host kept after its peer took over (the service address is no longer \
                here, so its kernel cannot answer those connections' clients)
                """
            )
        }
        if decision.role == .secondary { endStaleCopies(logger: logger, configuration: configuration) }
        return decision.role
    }
}

/// A node that no longer holds the service address ends its kernel's connections on it: copies
/// of connections its peer now serves (nothing reaches them any more, and their applications
/// would hold them open for ever). Safe only once the address is gone: the kernel cannot send
/// the RST it sends for each.
func endStaleCopies(logger: Logger, configuration: DaemonConfiguration) {
    guard configuration.separateServiceAddress != nil else { return }
    do {
        var ended = 0
        for service in configuration.serviceAddresses {
            ended += try KernelSocketTable.destroyOpenConnections(
                localAddress: service,
                ports: Set(configuration.ports)
            )
        }
        if ended > 0 {
            logger.notice(
                """
                ended this kernel's \(ended) copies of connections on the service address, which the peer serves now \
                (their application sees them aborted)
                """
            )
        }
    } catch {
        logger.warning(
            """
            could not end this kernel's copies of connections on the service address (\(error)): the application keeps \
            them open until it times them out; they receive nothing
            """
        )
    }
}
