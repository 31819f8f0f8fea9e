import Foundation

/// What the kernel says of each NFQUEUE bound in this network namespace
/// (`/proc/net/netfilter/nfnetlink_queue`): packets waiting, and packets it dropped because the
/// queue was full (`queueDropped`) or because the bridge's socket could not take them
/// (`userDropped`: its receive buffer was full).
public struct NetfilterQueueStatistics: Equatable, Sendable {
    public var queue: UInt16
    public var waiting: UInt64
    public var queueDropped: UInt64
    public var userDropped: UInt64

    public static let path = "/proc/net/netfilter/nfnetlink_queue"

    public init(queue: UInt16, waiting: UInt64, queueDropped: UInt64, userDropped: UInt64) {
        self.queue = queue
        self.waiting = waiting
        self.queueDropped = queueDropped
        self.userDropped = userDropped
    }

    /// Parses the file's lines (`queue peer_portid waiting copy_mode copy_range queue_dropped
    /// user_dropped id_sequence 1`); lines that do not read so are skipped.
    public static func parse(_ text: String) -> [UInt16: NetfilterQueueStatistics] {
        var result: [UInt16: NetfilterQueueStatistics] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 7, let queue = UInt16(fields[0]), let waiting = UInt64(fields[2]),
                let queueDropped = UInt64(fields[5]), let userDropped = UInt64(fields[6])
            else { continue }
            result[queue] = NetfilterQueueStatistics(
                queue: queue,
                waiting: waiting,
                queueDropped: queueDropped,
                userDropped: userDropped
            )
        }
        return result
    }

    /// The statistics of this namespace's queues; empty if the file cannot be read.
    public static func read() -> [UInt16: NetfilterQueueStatistics] {
        (try? String(contentsOfFile: path, encoding: .utf8)).map(parse) ?? [:]
    }
}
