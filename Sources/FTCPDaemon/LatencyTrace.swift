import FTCPBridge
import FTCPWire
import Glibc
import Logging

/// When a bridge handled each data segment of its protected connections, hop by hop: what
/// `--latency-trace-dir` records and `ftcp-bridge latency-report` reads, to show where the time
/// of a request and its answer goes (issue 13, item 2).
///
/// Both bridges read the same clock (`CLOCK_MONOTONIC`: in the lab they share one host, and
/// network namespaces do not move the clock), so a request's hops on the two nodes line up.
/// A record costs one clock reading and one store into memory taken at the start; the file is
/// written when the bridge stops, never from the loop. Recording stops at `capacity`.
public final class LatencyTrace {
    /// Where on its way through the bridges a segment was seen.
    public enum Hop: String, CaseIterable, Sendable {
        /// The primary read a client's segment from its inbound queue.
        case primaryClientIn = "primary.client-in"
        /// The primary read its own kernel's segment to a client from its outbound queue.
        case primaryKernelOut = "primary.kernel-out"
        /// The primary read the secondary's relay of its kernel's segment (bytes or digests).
        case primaryRelayIn = "primary.relay-in"
        /// The primary was about to hand a merged segment to its kernel for the client.
        case primarySent = "primary.sent"
        /// The secondary read a client's frame from its capture.
        case secondaryCaptured = "secondary.captured"
        /// The secondary was about to inject it into its own kernel.
        case secondaryInjected = "secondary.injected"
        /// The secondary read its kernel's segment to a client from its outbound queue.
        case secondaryKernelOut = "secondary.kernel-out"
        /// The secondary was about to send the replication datagram carrying it.
        case secondaryRelayed = "secondary.relayed"
        /// The client wrote a request (`ftcp-labtool round-trip --trace`).
        case clientSend = "client.send"
        /// The client read the whole answer.
        case clientReceive = "client.receive"
    }

    /// One segment at one hop.
    public struct Record: Equatable, Sendable {
        public var hop: Hop
        public var clientPort: UInt16
        /// The segment's sequence number in the space of the kernel that sent it.
        public var sequence: UInt32
        public var payloadLength: Int
        public var nanoseconds: UInt64

        /// One line of the trace file: `hop,client_port,sequence,payload_length,monotonic_ns`.
        public var line: String { "\(hop.rawValue),\(clientPort),\(sequence),\(payloadLength),\(nanoseconds)" }

        public init(hop: Hop, clientPort: UInt16, sequence: UInt32, payloadLength: Int, nanoseconds: UInt64) {
            self.hop = hop
            self.clientPort = clientPort
            self.sequence = sequence
            self.payloadLength = payloadLength
            self.nanoseconds = nanoseconds
        }

        /// The segment in `packet` at `hop`.
        init(hop: Hop, _ packet: TCPPacket, clientPortIsDestination: Bool, nanoseconds: UInt64) {
            self.init(
                hop: hop,
                clientPort: clientPortIsDestination ? packet.tcp.destinationPort : packet.tcp.sourcePort,
                sequence: packet.tcp.sequenceNumber.rawValue,
                payloadLength: packet.tcp.payloadLength,
                nanoseconds: nanoseconds
            )
        }

        /// Reads one line; nil if it is not one (a header, a comment, a truncated last line).
        public init?(line: Substring) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 5, let hop = Hop(rawValue: String(fields[0])),
                let port = UInt16(fields[1]), let sequence = UInt32(fields[2]),
                let length = Int(fields[3]), length >= 0, let nanoseconds = UInt64(fields[4])
            else { return nil }
            self.init(hop: hop, clientPort: port, sequence: sequence, payloadLength: length, nanoseconds: nanoseconds)
        }
    }

    public static let header = "# hop,client_port,sequence,payload_length,monotonic_ns"
    /// 24 MB of records at most: a minute of a busy request/response load.
    public static let defaultCapacity = 1_000_000

    let path: String
    let capacity: Int
    private(set) var records: [Record] = []
    /// Records not kept because the trace was full.
    private(set) var leftOut = 0
    /// Segments read in this turn that leave in a datagram or a send still to come.
    private var waiting: [Record] = []

    /// - Parameters:
    ///   - directory: where the file goes; it must exist.
    ///   - role: `primary` or `secondary`, part of the file's name.
    init(directory: String, role: String, capacity: Int = LatencyTrace.defaultCapacity) {
        path = "\(directory)/latency-\(role)-\(getpid()).csv"
        self.capacity = capacity
        records.reserveCapacity(min(capacity, 65_536))
    }

    /// Records a segment with payload at `hop` now; segments without payload are left out.
    func record(_ hop: Hop, clientPort: UInt16, sequence: UInt32, payloadLength: Int) {
        guard payloadLength > 0 else { return }
        append(
            Record(
                hop: hop,
                clientPort: clientPort,
                sequence: sequence,
                payloadLength: payloadLength,
                nanoseconds: MonotonicClock.now().nanoseconds
            )
        )
    }

    /// Records a merged segment the primary is about to send to its client. (Every hop that
    /// hands a segment on is recorded just before the system call: on one host the call itself
    /// may carry the segment all the way to the next reader, who records it first.)
    func recordSent(_ packet: TCPPacketFields) {
        record(
            .primarySent,
            clientPort: packet.destinationPort,
            sequence: packet.sequenceNumber.rawValue,
            payloadLength: packet.payload.count
        )
    }

    /// Records every segment waiting at `hop` as passing it now.
    func recordWaiting(at hop: Hop) {
        guard !waiting.isEmpty else { return }
        let now = MonotonicClock.now().nanoseconds
        for var record in waiting where record.hop == hop {
            record.nanoseconds = now
            append(record)
        }
        waiting.removeAll { $0.hop == hop }
    }

    /// Records the segment in `packet` (its ports, sequence number and payload length) now.
    func record(_ hop: Hop, _ packet: TCPPacket, clientPortIsDestination: Bool) {
        guard packet.tcp.payloadLength > 0 else { return }
        append(
            Record(
                hop: hop,
                packet,
                clientPortIsDestination: clientPortIsDestination,
                nanoseconds: MonotonicClock.now().nanoseconds
            )
        )
    }

    /// Notes the segment in `packet` as leaving later in this turn, for ``recordWaiting(at:)``.
    func wait(_ hop: Hop, _ packet: TCPPacket, clientPortIsDestination: Bool) {
        guard packet.tcp.payloadLength > 0 else { return }
        waiting.append(Record(hop: hop, packet, clientPortIsDestination: clientPortIsDestination, nanoseconds: 0))
    }

    private func append(_ record: Record) {
        guard records.count < capacity else {
            leftOut += 1
            return
        }
        records.append(record)
    }

    /// Writes the file (replacing one of the same name).
    func write() throws(DaemonError) {
        var text = Self.header + "\n"
        if leftOut > 0 { text += "# \(leftOut) records left out: the trace was full\n" }
        for record in records { text += record.line + "\n" }
        guard let file = fopen(path, "w") else {
            throw .latencyTraceUnwritable(path: path, reason: String(cString: strerror(errno)))
        }
        let written = fputs(text, file) >= 0
        let reason = String(cString: strerror(errno))
        guard fclose(file) == 0, written else { throw .latencyTraceUnwritable(path: path, reason: reason) }
    }
}

/// Writes a bridge's latency trace, if it keeps one, as it stops.
func writeTrace(_ trace: LatencyTrace?, logger: Logger) {
    guard let trace else { return }
    do {
        try trace.write()
        logger.notice(
            "latency trace written",
            metadata: ["path": "\(trace.path)", "records": "\(trace.records.count)", "left_out": "\(trace.leftOut)"]
        )
    } catch {
        logger.error("\(error)")
    }
}
