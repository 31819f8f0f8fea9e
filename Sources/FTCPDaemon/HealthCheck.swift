import Foundation

/// What `ftcp-bridge status --check` and `--brief` make of a running bridge's status: pure,
/// so the exit codes a load balancer's health check relies on are unit-tested.
public enum HealthCheck {
    /// `status --check`'s exit status.
    public enum Verdict: Int32, Sendable {
        /// This node serves the service address: primary (replicating, alone or waiting for a
        /// secondary), or a secondary that took it over and still serves as secondary (the
        /// older form).
        case serving = 0
        /// A healthy secondary: it replicates behind a live primary, or decides whether to take over.
        case standby = 1
        /// Failed, or not running (no status at all).
        case failed = 2
    }

    /// The verdict and the one line `--check` prints.
    public static func check(_ status: DaemonStatus?) -> (verdict: Verdict, line: String) {
        guard let status else { return (.failed, "not running: no bridge answers on the control socket") }
        // The counts cover every connection; the list only the first few hundred.
        let protected = status.connectionsByKind["protected"] ?? status.connections.filter(\.protected).count
        let open =
            status.connectionsByKind.isEmpty
            ? status.connections.filter { $0.phase != "closed" && $0.phase != "inherited-closing" }.count
            : status.connectionsByKind.values.reduce(0, +)
        let connections = "\(protected) of \(open) connections protected"
        switch (status.role, status.state) {
        case ("primary", "replicating"):
            return (.serving, "serving as primary, replicating to \(status.peer.address): \(connections)")
        case ("primary", "alone"), ("primary", "waiting-for-secondary"):
            return (.serving, "serving as primary, alone (unprotected: no secondary replicates): \(connections)")
        case ("secondary", "promoted"):
            return (.serving, "serving after a takeover (unprotected): \(open) connections")
        case ("secondary", "replicating"):
            return status.peer.alive
                ? (
                    .standby,
                    "secondary, replicating behind \(status.peer.address): \(status.connections.count) connections"
                )
                : (.standby, "secondary, primary \(status.peer.address) not heard yet")
        case ("secondary", let state):
            return (.standby, "secondary, primary \(status.peer.address) silent: \(state)")
        default:
            return (.failed, "\(status.role) in state \(status.state): \(status.stateReason)")
        }
    }

    /// `status --brief`: a few lines for a person at a terminal.
    public static func brief(_ status: DaemonStatus) -> String {
        var phases: [String: Int] = [:]
        for connection in status.connections { phases[connection.phase, default: 0] += 1 }
        let byPhase = phases.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let heard = status.peer.lastHeardMillisecondsAgo.map { "last heard \($0) ms ago" } ?? "never heard"
        var lines = [
            "\(status.role), \(status.state) for \(Self.duration(status.stateSinceSeconds)) (up \(Self.duration(status.uptimeSeconds)), pid \(status.pid))",
            "  why:         \(status.stateReason)",
            "  peer:        \(status.peer.address), \(status.peer.state), \(heard)",
            "  connections: \(status.connections.count == 0 ? "none" : byPhase); \(status.connections.filter(\.protected).count) protected",
        ]
        let notable = [
            "switchovers", "replicasLostPrimary", "replicasLostSecondary", "droppedTableFull", "inheritedOpen",
        ]
        .compactMap { name in status.counters[name].flatMap { $0 > 0 ? "\(name) \($0)" : nil } }
        if !notable.isEmpty { lines.append("  counters:    \(notable.joined(separator: ", "))") }
        lines.append("  health:      \(check(status).line)")
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds)
        if whole < 120 { return String(format: "%.1f s", seconds) }
        if whole < 7_200 { return "\(whole / 60) min" }
        if whole < 172_800 { return "\(whole / 3_600) h \(whole % 3_600 / 60) min" }
        return "\(whole / 86_400) days"
    }
}
