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
    private var throttle = LogThrottle()
    private var receiveBuffer = [UInt8](repeating: 0, count: 70_000)
    private let logger: Logger
    /// Recently sent datagrams by counter, kept to answer the peer's resend requests.
    private var history: [(counter: UInt64, datagram: [UInt8])?] = Array(repeating: nil, count: ReplicationLink.historySize)
    /// With bundles of up to 16 KB this holds at most 32 MiB; at full speed about half a second.
    static let historySize = 2048
    /// The peer's epoch and the counter expected next from it, to spot lost datagrams.
    private var expected: (epoch: UInt64, counter: UInt64)?
    /// Counters of the peer's current epoch that never arrived, with when they were last asked
    /// for and how often: asked again until they come, since a resent datagram can be lost too.
    private var missing: [UInt64: (lastAsked: MonotonicTime, attempts: Int)] = [:]
    /// First wait before asking again for a datagram still missing; it doubles with each
    /// attempt (15, 30, 60, … 480 ms), so that a resend still on its way is not asked for again
    /// and again: every ask costs the peer a whole datagram, and a storm of them would bury the
    /// very datagrams that are missing.
    static let resendRetryMilliseconds: UInt64 = 15
    static let resendAttempts = 7
    /// Most counters asked for again in one turn.
    static let resendRetryBatch = 256
    /// A peer silent this long before a datagram arrives has been away (a partition, a stall):
    /// what it sent meanwhile is stale (the kernels' own retransmissions and the fault
    /// detector's verdict have taken over), so the gap is not asked for.
    static let resynchronizeAfterSilenceMilliseconds: UInt64 = 100
    private(set) var resynchronizations: UInt64 = 0
    private(set) var resendsRequested: UInt64 = 0
    private(set) var resendsAbandoned: UInt64 = 0
    private(set) var resendsAnswered: UInt64 = 0

    /// - Parameter socket: the bound socket to go on with (a node changing roles), or nil to open one.
    init(configuration: DaemonConfiguration, logger: Logger, socket existing: UDPSocket? = nil) throws {
        // Large buffers: the secondary relays every segment its kernel sends, in bursts as
        // large as a congestion window, and a datagram lost here costs a retransmission timeout.
        socket = try existing ?? UDPSocket(address: configuration.ownAddress, port: configuration.replicationPort,
                                           receiveBufferBytes: 64 << 20, sendBufferBytes: 16 << 20,
                                           mark: configuration.bypassMark, reuseAddress: false)
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
        } catch {
            sendErrors += 1
            throttle.warning("send", "replication send failed", metadata: ["peer": "\(peerAddress)", "error": "\(error)"],
                             logger: logger, now: now)
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
            let result = receiveBuffer.withUnsafeBytes { opener.open(UnsafeRawBufferPointer(rebasing: $0[0..<received.length])) }
            switch result {
            case let .success(message):
                let silence = lastHeard.map { now.milliseconds(since: $0) } ?? 0
                lastHeard = now
                noticeGaps(message, now: now, afterSilence: silence >= Self.resynchronizeAfterSilenceMilliseconds)
                if case let .resendRequest(first, count) = message.message {
                    resend(first: first, count: count)
                } else {
                    body(message.message)
                }
            case let .failure(reason):
                logger.debug("replication datagram dropped", metadata: ["from": "\(received.from)", "reason": "\(reason)"])
            }
        }
    }

    /// Asks the peer again for datagrams whose counters were skipped: on this channel a lost
    /// datagram is usually a secondary's segment, and waiting for the secondary's kernel to
    /// retransmit it would cost a retransmission timeout.
    private func noticeGaps(_ message: ReceivedReplicationMessage, now: MonotonicTime, afterSilence: Bool) {
        if afterSilence, let current = expected, current.epoch == message.epoch, message.counter > current.counter {
            expected = (message.epoch, message.counter + 1)
            missing.removeAll()
            resynchronizations += 1
            return
        }
        guard let current = expected, current.epoch == message.epoch else {
            expected = (message.epoch, message.counter + 1)
            missing.removeAll()
            return
        }
        missing[message.counter] = nil
        guard message.counter >= current.counter else { return }
        if message.counter > current.counter {
            let first = max(current.counter, message.counter &- min(message.counter, UInt64(Self.historySize)))
            for counter in first..<message.counter where missing.count < Self.historySize {
                missing[counter] = (now, 1)
            }
            request(first..<message.counter, now: now)
        }
        expected = (message.epoch, message.counter + 1)
    }

    /// Asks again for what is still missing; called on every turn of the loop.
    func retryMissing(now: MonotonicTime) {
        guard !missing.isEmpty else { return }
        var due: [UInt64] = []
        for (counter, entry) in missing where due.count < Self.resendRetryBatch {
            let wait = Self.resendRetryMilliseconds << UInt64(min(entry.attempts - 1, 5))
            guard now.milliseconds(since: entry.lastAsked) >= wait else { continue }
            if entry.attempts >= Self.resendAttempts {
                missing[counter] = nil
                resendsAbandoned += 1
            } else {
                missing[counter] = (now, entry.attempts + 1)
                due.append(counter)
            }
        }
        // One request per run of consecutive counters.
        due.sort()
        var start = 0
        while start < due.count {
            var end = start + 1
            while end < due.count && due[end] == due[end - 1] + 1 && end - start < 1024 { end += 1 }
            request(due[start]..<(due[end - 1] + 1), now: now)
            start = end
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
            guard let entry = history[Int(counter % UInt64(Self.historySize))], entry.counter == counter else { continue }
            do {
                try entry.datagram.withUnsafeBytes { try socket.send($0, to: peerAddress, port: port) }
                resendsAnswered += 1
            } catch {
                sendErrors += 1
            }
        }
    }

    func peerStatus(now: MonotonicTime, detector: FaultDetector) -> DaemonStatus.PeerStatus {
        let ago = lastHeard.map { now.milliseconds(since: $0) }
        return DaemonStatus.PeerStatus(address: "\(peerAddress)", state: detector.state.rawValue,
                                       alive: detector.state == .alive, lastHeardMillisecondsAgo: ago,
                                       epoch: opener.peerEpoch)
    }

    var counters: [String: UInt64] {
        var all = DaemonStatus.replicationCounters(opener.statistics, sent: sent, sendErrors: sendErrors)
        all["resendsRequested"] = resendsRequested
        all["resendsAnswered"] = resendsAnswered
        all["resendsAbandoned"] = resendsAbandoned
        all["missingNow"] = UInt64(missing.count)
        all["resynchronizations"] = resynchronizations
        return all
    }
}
