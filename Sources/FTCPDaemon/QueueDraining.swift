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
    /// `decide` gets each packet with its bytes where the kernel wrote them (``Packet/bytes``): it
    /// may rewrite them in place and name them as the replacement (``VerdictRequest/replacement``),
    /// valid until the batch's verdicts are sent; nothing is copied on the way.
    func drain(_ decide: (Packet) -> VerdictRequest, beforeVerdicts: () -> Void = {}) throws {
        let start = MonotonicClock.now()
        for _ in 0..<8 {
            let packets: [Packet]
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
            for packet in packets { verdicts.append(decide(packet)) }
            beforeVerdicts()
            try setVerdicts(verdicts)
            if MonotonicClock.now().milliseconds(since: start) >= turnBudgetMilliseconds { return }
        }
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
