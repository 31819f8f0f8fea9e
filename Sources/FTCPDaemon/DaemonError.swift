import FTCPWire

/// Why a bridge refuses to start or to go on.
public enum DaemonError: Error, CustomStringConvertible {
    /// Another host answers ARP for the address this primary would serve.
    case serviceAddressHeld(address: IPv4Address, by: String, interface: String)
    /// The latency trace (`--latency-trace-dir`) could not be written when the bridge stopped.
    case latencyTraceUnwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .serviceAddressHeld(address, owner, interface):
            return """
                \(address) is held by \(owner) on \(interface)'s segment (most likely the secondary took it over \
                while this host was away). Refusing to start as primary: two hosts would answer for it. Serve from \
                the host that holds it, or stop that host's bridge and remove the address there first.
                """
        case let .latencyTraceUnwritable(path, reason):
            return
                "cannot write the latency trace \(path): \(reason) (check that --latency-trace-dir exists and is writable)"
        }
    }
}
