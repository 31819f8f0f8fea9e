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
    private var lastSendErrorLog: MonotonicTime?
    private var receiveBuffer = [UInt8](repeating: 0, count: 70_000)
    private let logger: Logger

    init(configuration: DaemonConfiguration, logger: Logger) throws {
        // Large buffers: the secondary relays every segment its kernel sends, in bursts as
        // large as a congestion window, and a datagram lost here costs a retransmission timeout.
        socket = try UDPSocket(address: configuration.ownAddress, port: configuration.replicationPort,
                               receiveBufferBytes: 64 << 20, sendBufferBytes: 16 << 20,
                               mark: configuration.bypassMark, reuseAddress: false)
        peerAddress = configuration.peerAddress
        port = configuration.replicationPort
        sealer = ReplicationSealer(key: configuration.key, role: configuration.role, epoch: MonotonicClock.epoch())
        opener = ReplicationOpener(key: configuration.key, localRole: configuration.role)
        self.logger = logger
    }

    var fileDescriptor: Int32 { socket.fileDescriptor }

    /// Seals and sends one message; failures are counted and logged at most once a second.
    func send(_ message: ReplicationMessage, now: MonotonicTime) {
        do {
            let datagram = try sealer.seal(message)
            try datagram.withUnsafeBytes { try socket.send($0, to: peerAddress, port: port) }
            sent += 1
        } catch {
            sendErrors += 1
            if lastSendErrorLog.map({ now.milliseconds(since: $0) >= 1000 }) ?? true {
                lastSendErrorLog = now
                logger.warning("replication send failed", metadata: ["peer": "\(peerAddress)", "error": "\(error)"])
            }
        }
    }

    /// Reads every waiting datagram and hands each authentic message to `body`.
    func receiveAll(now: MonotonicTime, _ body: (ReplicationMessage) -> Void) {
        for _ in 0..<256 {
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
                lastHeard = now
                body(message.message)
            case let .failure(reason):
                logger.debug("replication datagram dropped", metadata: ["from": "\(received.from)", "reason": "\(reason)"])
            }
        }
    }

    func peerStatus(now: MonotonicTime, aliveWithinMilliseconds: UInt64) -> DaemonStatus.PeerStatus {
        let ago = lastHeard.map { now.milliseconds(since: $0) }
        return DaemonStatus.PeerStatus(address: "\(peerAddress)", alive: ago.map { $0 <= aliveWithinMilliseconds } ?? false,
                                       lastHeardMillisecondsAgo: ago, epoch: opener.peerEpoch)
    }

    var counters: [String: UInt64] {
        DaemonStatus.replicationCounters(opener.statistics, sent: sent, sendErrors: sendErrors)
    }
}
