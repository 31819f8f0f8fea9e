import FTCPLinux

extension NetfilterQueue {
    /// Reads what is queued now (at most 8 batches of 128, so one busy queue cannot starve the
    /// rest of the loop) and gives every packet the verdict `decide` returns, a batch at a time.
    func drain(_ decide: (Packet) -> VerdictRequest) throws {
        for _ in 0..<8 {
            let packets = try receive(maxPackets: 128, timeout: .zero)
            if packets.isEmpty { return }
            try setVerdicts(packets.map(decide))
        }
    }
}

/// The rules and the control socket, set up in the order every bridge needs: rules first
/// (the queues are already bound, so nothing is dropped for want of a reader), the control
/// socket last, so that once `status` answers, the bridge is in the path.
func installRulesAndControlSocket(_ configuration: DaemonConfiguration, firewall: Firewall) throws -> ControlSocket {
    let plan = configuration.firewallPlan
    try firewall.install(plan)
    do {
        return try ControlSocket(path: configuration.controlPath)
    } catch {
        firewall.remove(role: plan.role)
        throw error
    }
}
