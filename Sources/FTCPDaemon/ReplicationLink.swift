import FTCPBridge
import FTCPLinux
import FTCPReplication
import FTCPWire
import Logging

/// The replication channel as the daemons use it: a UDP socket to the peer,
/// sealing what goes out, opening (and counting the drops of) what comes in,
/// and remembering when the peer was last heard.
final class ReplicationLink {
    let socket: UDPSocket
    let peerAddress: IPv4Address
    let port: UInt16
    private var sealer: ReplicationSealer
    private(set) var opener: ReplicationOpener
    private(set) var lastHeard: MonotonicTime?
    private(set) var sent: UInt64 = 0
    private(set) var sendErrors: UInt64 = 0
    /// Bytes of every datagram sent, resends included (UDP payload: what the channel costs the
    /// link, less the IP and UDP headers).
    private(set) var sentBytes: UInt64 = 0
    private var throttle = LogThrottle()
    private var versionThrottle = LogThrottle(intervalMilliseconds: 10_000)
    private var receiveBuffer = [UInt8](repeating: 0, count: 70_000)
    private let logger: Logger
    /// Recently sent datagrams by counter, kept to answer the peer's resend requests.
    private var history: [(counter: UInt64, datagram: [UInt8])?] = Array(
        repeating: nil,
        count: ReplicationLink.historySize
    )
    /// With bundles of up to 16 KB this holds at most 32 MiB; at full speed about half a second.
    static let historySize = 2048
    /// Which of the peer's datagrams were lost, and when to ask for them again.
    private var resends = ResendTracker(window: UInt64(ReplicationLink.historySize))
    private(set) var resendsRequested: UInt64 = 0
    private(set) var resendsAnswered: UInt64 = 0
    /// What the peer's build reads, from its messages.
    private var capabilities = PeerCapabilities()

    /// - Parameter socket: the bound socket to go on with (a node changing roles), or nil to open one.
    init(configuration: DaemonConfiguration, logger: Logger, socket existing: UDPSocket? = nil) throws {
        // Large buffers: the secondary relays every segment its kernel sends, in bursts as
        // large as a congestion window, and a datagram lost here costs a retransmission timeout.
        socket =
            try existing
            ?? UDPSocket(
                address: configuration.ownAddress,
                port: configuration.replicationPort,
                receiveBufferBytes: 64 << 20,
                sendBufferBytes: 16 << 20,
                mark: configuration.bypassMark,
                reuseAddress: false
            )
        peerAddress = configuration.peerAddress
        port = configuration.replicationPort
        sealer = ReplicationSealer(key: configuration.key, role: configuration.role, epoch: MonotonicClock.epoch())
        opener = ReplicationOpener(key: configuration.key, localRole: configuration.role)
        self.logger = logger
    }

    var fileDescriptor: Int32 { socket.fileDescriptor }

    /// Closes the channel's socket (before the node opens it again in another role).
    func close() { socket.close() }

    /// Seals and sends one message; failures are counted and logged at most once a second.
    func send(_ message: ReplicationMessage, now: MonotonicTime) {
        do {
            let counter = sealer.nextCounter
            let datagram = try sealer.seal(message)
            // Every datagram is kept (resend requests too), so that every counter can be answered.
            history[Int(counter % UInt64(Self.historySize))] = (counter, datagram)
            try datagram.withUnsafeBytes { try socket.send($0, to: peerAddress, port: port) }
            sent += 1
            sentBytes += UInt64(datagram.count)
        } catch {
            sendErrors += 1
            throttle.warning(
                "send",
                "replication send failed",
                metadata: ["peer": "\(peerAddress)", "error": "\(error)"],
                logger: logger,
                now: now
            )
        }
    }

    /// Reads every waiting datagram and hands each authentic message to `body`.
    func receiveAll(now: MonotonicTime, _ body: (ReplicationMessage) -> Void) {
        for index in 0..<256 {
            if index % 16 == 15 && MonotonicClock.now().milliseconds(since: now) >= turnBudgetMilliseconds { return }
            let received: (length: Int, from: IPv4Address, port: UInt16)?
            do {
                received = try receiveBuffer.withUnsafeMutableBytes { try socket.receive(into: $0) }
            } catch {
                logger.warning("replication receive failed", metadata: ["error": "\(error)"])
                return
            }
            guard let received else { return }
            let result = receiveBuffer.withUnsafeBytes {
                opener.open(UnsafeRawBufferPointer(rebasing: $0[0..<received.length]))
            }
            switch result {
            case let .success(message):
                lastHeard = now
                for counters in resends.received(
                    epoch: message.epoch,
                    counter: message.counter,
                    nowMilliseconds: now.nanoseconds / 1_000_000
                ) {
                    request(counters, now: now)
                }
                if let change = capabilities.heard(message) { sayCapabilities(change.now, before: change.before) }
                if case let .resendRequest(first, count) = message.message {
                    resend(first: first, count: count)
                } else {
                    body(message.message)
                }
            case let .failure(.incompatibleVersion(peer, local)):
                // Authentic: the peer holds the key but runs an ftcp of another format version.
                // Said at error level every 10 s while it lasts; the peer counts as unheard.
                if let suppressed = versionThrottle.admit("version", now: now) {
                    logger.error(
                        "the peer runs an incompatible ftcp: it speaks replication format version \(peer), this node \(local); no replication until both nodes run the same format version (upgrade the older node)",
                        metadata: ["peer": "\(received.from)", "similar_lines_left_out": "\(suppressed)"]
                    )
                }
            case let .failure(reason):
                logger.debug(
                    "replication datagram dropped",
                    metadata: ["from": "\(received.from)", "reason": "\(reason)"]
                )
            }
        }
    }

    /// What the peer's build reads (``ReplicationCapabilities``), as its running process's
    /// heartbeats said or its digests showed; none until then.
    var peerCapabilities: ReplicationCapabilities { capabilities.current(peerEpoch: opener.peerEpoch) }

    /// Says what the peer's heartbeats name, when it changes: a peer that reads fewer messages
    /// than this build is an older release, and gets only what it reads.
    private func sayCapabilities(_ capabilities: ReplicationCapabilities, before previous: ReplicationCapabilities?) {
        let missing = ReplicationCapabilities.thisBuild.subtracting(capabilities)
        let metadata: Logger.Metadata = [
            "peer": "\(peerAddress)", "peer_reads": "\(capabilities)",
            "previous": "\(previous.map { "\($0)" } ?? "none heard")",
        ]
        if missing.isEmpty {
            logger.info("the peer's ftcp reads every replication message this node sends", metadata: metadata)
        } else {
            logger.notice(
                "the peer's ftcp is an older release whose heartbeats do not say it reads: \(missing); the nodes replicate with what both read (a secondary relays bytes to a primary that does not read digests: the channel carries every byte); upgrade the older node",
                metadata: metadata
            )
        }
    }

    /// Asks again for what is still missing (see ``ResendTracker``); called on every turn of the loop.
    /// When ``retryMissing(now:)`` next has something to ask for; nil while nothing is missing.
    var nextRetryDeadline: MonotonicTime? { resends.nextRetryMilliseconds.map { .milliseconds($0) } }

    func retryMissing(now: MonotonicTime) {
        for counters in resends.due(nowMilliseconds: now.nanoseconds / 1_000_000) {
            request(counters, now: now)
        }
    }

    private func request(_ counters: Range<UInt64>, now: MonotonicTime) {
        var first = counters.lowerBound
        while first < counters.upperBound {
            let count = UInt32(min(counters.upperBound - first, 1024))
            send(.resendRequest(firstCounter: first, count: count), now: now)
            resendsRequested += UInt64(count)
            first += UInt64(count)
        }
    }

    private func resend(first: UInt64, count: UInt32) {
        for offset in 0..<UInt64(count) {
            let counter = first &+ offset
            guard let entry = history[Int(counter % UInt64(Self.historySize))], entry.counter == counter else {
                continue
            }
            do {
                try entry.datagram.withUnsafeBytes { try socket.send($0, to: peerAddress, port: port) }
                resendsAnswered += 1
                sentBytes += UInt64(entry.datagram.count)
            } catch {
                sendErrors += 1
            }
        }
    }

    func peerStatus(now: MonotonicTime, detector: FaultDetector) -> DaemonStatus.PeerStatus {
        let ago = lastHeard.map { now.milliseconds(since: $0) }
        return DaemonStatus.PeerStatus(
            address: "\(peerAddress)",
            state: detector.state.rawValue,
            alive: detector.state == .alive,
            lastHeardMillisecondsAgo: ago,
            epoch: opener.peerEpoch,
            formatVersion: ReplicationOpener.formatVersion,
            incompatibleFormatVersion: opener.incompatiblePeerVersion,
            capabilities: opener.peerEpoch == nil ? nil : "\(peerCapabilities)"
        )
    }

    var counters: [String: UInt64] {
        var all = DaemonStatus.replicationCounters(opener.statistics, sent: sent, sendErrors: sendErrors)
        all["sentBytes"] = sentBytes
        all["resendsRequested"] = resendsRequested
        all["resendsAnswered"] = resendsAnswered
        all["resendsAbandoned"] = resends.abandoned
        all["missingNow"] = UInt64(resends.missingCount)
        all["resynchronizations"] = resends.resynchronizations
        return all
    }
}
