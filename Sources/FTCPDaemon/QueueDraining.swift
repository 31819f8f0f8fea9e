import FTCPBridge
import FTCPLinux

extension NetfilterQueue {
    /// Reads what is queued now and gives every packet the verdict `decide` returns, a batch at
    /// a time: at most 8 batches of 128 and at most ``turnBudgetMilliseconds`` of work, so one
    /// busy queue cannot starve the rest of the loop (heartbeats above all). What is left stays
    /// queued in the kernel for the next turn.
    ///
    /// - Parameter beforeVerdicts: runs after each batch is decided and before its verdicts go
    ///   to the kernel: what the decisions produced (a relay datagram, merged segments) leaves
    ///   one system call and one empty read sooner, and on a request's path that is the
    ///   critical one (`ftcp-bridge latency-report` shows it).
    ///
    /// `decide` gets each packet `inout`: ``Packet/takePayload()`` leaves it the only reference to
    /// the bytes, which it can then rewrite in place without a copy.
    func drain(_ decide: (inout Packet) -> VerdictRequest, beforeVerdicts: () -> Void = {}) throws {
        let start = MonotonicClock.now()
        for _ in 0..<8 {
            var packets: [Packet]
            do {
                packets = try receive(maxPackets: 128, timeout: .zero)
            } catch {
                // The kernel dropped packets it had queued (their interface went down, for one)
                // before their verdict came: nothing is lost that it had not dropped already.
                // The queue counts them (`rejectedVerdicts`); the loop goes on.
                guard error.code == .unknownPacketID else { throw error }
                continue
            }
            if packets.isEmpty { return }
            var verdicts: [VerdictRequest] = []
            verdicts.reserveCapacity(packets.count)
            for index in packets.indices { verdicts.append(decide(&packets[index])) }
            beforeVerdicts()
            try setVerdicts(verdicts)
            if MonotonicClock.now().milliseconds(since: start) >= turnBudgetMilliseconds { return }
        }
    }
}

extension NetfilterQueue.Packet {
    /// Moves the payload out of the packet (which keeps none): the caller then holds the only
    /// reference to the bytes, so rewriting them in place copies nothing. Read ``isTruncated``
    /// first: it compares with the payload's length.
    mutating func takePayload() -> [UInt8] {
        var payload: [UInt8] = []
        swap(&payload, &self.payload)
        return payload
    }
}

/// The most time one source of work (a queue, the replication socket) may take in one turn of
/// a bridge's loop before the loop moves on: heartbeats leave at least this often plus the
/// rest of the turn, well inside the 10 ms interval's budget of missed beats.
let turnBudgetMilliseconds: UInt64 = 4

/// The rules and the control socket, set up in the order every bridge needs: rules first
/// (the queues are already bound, so nothing is dropped for want of a reader), the control
/// socket last, so that once `status` answers, the bridge is in the path.
func installRulesAndControlSocket(
    _ configuration: DaemonConfiguration,
    plan: FirewallPlan? = nil,
    firewall: Firewall
) throws -> ControlSocket {
    let plan = plan ?? configuration.firewallPlan
    try firewall.install(plan)
    do {
        return try ControlSocket(path: configuration.controlPath)
    } catch {
        firewall.remove(role: plan.role)
        throw error
    }
}
