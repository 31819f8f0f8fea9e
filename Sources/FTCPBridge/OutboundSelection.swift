import FTCPWire

/// Which connections the servers' applications open are replicated (Koch et al. §7.2,
/// "Server-Initiated Connection Establishment"): those leaving from a local port (active FTP's
/// data connections leave from port 20), or those to one remote endpoint (a back-end database).
/// The same list on both servers, as with the protected ports.
public enum OutboundSelection: Hashable, Sendable, CustomStringConvertible {
    /// Connections whose local (source) port is this one, to anywhere.
    case localPort(UInt16)
    /// Connections to this remote address and port, from any local port.
    case remote(IPv4Address, port: UInt16)

    /// Parses `PORT` or `ADDRESS:PORT` (`--protect-outbound 20`, `--protect-outbound 10.0.0.5:5432`).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            guard let port = UInt16(parts[0]), port != 0 else { return nil }
            self = .localPort(port)
        case 2:
            guard let address = IPv4Address(String(parts[0])), let port = UInt16(parts[1]), port != 0 else {
                return nil
            }
            self = .remote(address, port: port)
        default:
            return nil
        }
    }

    /// Whether a connection between `localPort` here and `remoteAddress`:`remotePort` is selected.
    public func selects(localPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16) -> Bool {
        switch self {
        case let .localPort(port): return localPort == port
        case let .remote(address, port): return remoteAddress == address && remotePort == port
        }
    }

    public var description: String {
        switch self {
        case let .localPort(port): return String(port)
        case let .remote(address, port): return "\(address):\(port)"
        }
    }
}
