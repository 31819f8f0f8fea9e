import Foundation

/// Runs `iptables` to install, inspect and remove a bridge's rules.
///
/// The only part of ftcp that starts another program; each failure names
/// the exact command and what iptables said.
public struct Firewall: Sendable {
    /// The iptables binary (the nf_tables backend is what this was tested on).
    public var executable: String

    public init(executable: String = Firewall.findIPTables()) {
        self.executable = executable
    }

    /// Looks for iptables where Debian and most distributions put it.
    public static func findIPTables() -> String {
        for path in ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return "/usr/sbin/iptables"
    }

    /// Chains of `role` that exist now (left over from a run that did not clean up).
    public func existingChains(for role: FirewallPlan.Role) throws(FirewallError) -> [String] {
        var existing: [String] = []
        for name in FirewallPlan.chainNames(for: role)
        where try run(["-t", FirewallPlan.table, "-S", name]).status == 0 {
            existing.append(name)
        }
        return existing
    }

    /// Installs the plan; refuses if any of its chains already exist.
    public func install(_ plan: FirewallPlan) throws(FirewallError) {
        let stale = try existingChains(for: plan.role)
        guard stale.isEmpty else { throw .staleRules(role: plan.role, chains: stale) }
        for command in plan.installCommands {
            let result = try run(command)
            guard result.status == 0 else {
                // Leave nothing half-installed behind.
                remove(role: plan.role)
                throw .commandFailed(command: ([executable] + command).joined(separator: " "), output: result.output)
            }
        }
    }

    /// Removes every rule and chain of `role`; pieces already gone are fine.
    /// Returns how many commands did something.
    @discardableResult
    public func remove(role: FirewallPlan.Role) -> Int {
        var done = 0
        for command in FirewallPlan.removeCommands(for: role) {
            // A jump may have been added twice by hand; remove every copy.
            var attempts = 0
            while attempts < 16, let result = try? run(command), result.status == 0 {
                done += 1
                attempts += 1
                if command[2] != "-D" { break }
            }
        }
        return done
    }

    /// The rules of `role` as iptables lists them now (`-S`), or an empty array.
    public func listing(for role: FirewallPlan.Role) -> [String] {
        FirewallPlan.chainNames(for: role).flatMap { name -> [String] in
            guard let result = try? run(["-t", FirewallPlan.table, "-S", name]), result.status == 0 else { return [] }
            return result.output.split(separator: "\n").map(String.init)
        }
    }

    private func run(_ arguments: [String]) throws(FirewallError) -> (status: Int32, output: String) {
        do {
            let result = try ChildProcess.run(executable, ["-w", "5"] + arguments)
            return (result.status, result.output)
        } catch {
            throw .iptablesMissing(path: executable, reason: "\(error)")
        }
    }
}

/// Why the bridge's iptables rules could not be put in place.
public enum FirewallError: Error, Equatable, Sendable, CustomStringConvertible {
    case iptablesMissing(path: String, reason: String)
    case staleRules(role: FirewallPlan.Role, chains: [String])
    case commandFailed(command: String, output: String)

    public var description: String {
        switch self {
        case let .iptablesMissing(path, reason):
            return "cannot run \(path) (\(reason)); install iptables (Debian: apt-get install iptables)"
        case let .staleRules(role, chains):
            return
                "rules from an earlier \(role.rawValue) run are still installed (chains \(chains.joined(separator: ", "))). "
                + "If no other ftcp-bridge \(role.rawValue) runs in this network namespace, clear them with: "
                + "ftcp-bridge rules remove --role \(role.rawValue)"
        case let .commandFailed(command, output):
            return "\(command) failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines)). "
                + "Is the kernel's NFQUEUE/multiport support loaded and are you root?"
        }
    }
}
