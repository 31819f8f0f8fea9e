import FTCPWire
import Glibc

/// The kernel's own table of TCP sockets in this network namespace (`/proc/net/tcp`): which
/// connections are open on a local address, whatever any bridge knows of them. A primary asks
/// before a planned switchover, so that connections it never tracked (opened while it served
/// alone) are not given up without a word.
public enum KernelSocketTable {
    /// One open connection: the remote end and the local port.
    public struct Connection: Hashable, Sendable {
        public var remoteAddress: IPv4Address
        public var remotePort: UInt16
        public var localPort: UInt16
    }

    /// States in which a connection can still carry data one way or the other: ESTABLISHED,
    /// FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT (the numbers of the kernel's `tcp_states.h`).
    static let openStates: Set<UInt8> = [0x01, 0x04, 0x05, 0x08]

    /// Connections open on `localAddress` with a local port in `ports`.
    public static func openConnections(
        localAddress: IPv4Address,
        ports: Set<UInt16>,
        path: String = "/proc/net/tcp"
    ) throws(SystemCallError) -> [Connection] {
        parse(try readFile(path), localAddress: localAddress, ports: ports)
    }

    /// The table's text, parsed (pure: the tests feed it lines).
    static func parse(_ text: String, localAddress: IPv4Address, ports: Set<UInt16>) -> [Connection] {
        var connections: [Connection] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, let state = UInt8(fields[3], radix: 16), openStates.contains(state),
                let local = endpoint(fields[1]), let remote = endpoint(fields[2]),
                local.address == localAddress, ports.contains(local.port)
            else { continue }
            connections.append(
                Connection(remoteAddress: remote.address, remotePort: remote.port, localPort: local.port)
            )
        }
        return connections
    }

    /// `0100500A:270F`: the address as the kernel stores it (network order, printed as a
    /// little-endian word), the port in host order.
    static func endpoint(_ field: Substring) -> (address: IPv4Address, port: UInt16)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, parts[0].count == 8, let word = UInt32(parts[0], radix: 16),
            let port = UInt16(parts[1], radix: 16)
        else { return nil }
        let address = IPv4Address(
            UInt8(word & 0xff),
            UInt8(word >> 8 & 0xff),
            UInt8(word >> 16 & 0xff),
            UInt8(word >> 24)
        )
        return (address, port)
    }

    /// Ends the kernel's open connections on `localAddress` and `ports` (SOCK_DESTROY through
    /// `ss -K`): their applications see them aborted. For a node that no longer holds the
    /// service address: its copies of the connections its peer now serves would otherwise stay
    /// open for ever (nothing reaches them). The address must be gone first: the kernel then
    /// cannot send the RST it sends for each. Returns how many were open before.
    @discardableResult
    public static func destroyOpenConnections(localAddress: IPv4Address, ports: Set<UInt16>) throws(SystemCallError)
        -> Int
    {
        let open = try openConnections(localAddress: localAddress, ports: ports)
        guard !open.isEmpty else { return 0 }
        let candidates: [String] = ["/usr/bin/ss", "/bin/ss", "/usr/sbin/ss", "/sbin/ss"]
        let executable = candidates.first { path in access(path, X_OK) == 0 } ?? "/usr/bin/ss"
        let filter = "( " + ports.sorted().map { "sport = :\($0)" }.joined(separator: " or ") + " )"
        let result = try ChildProcess.run(executable, ["-K", "-t", "-n", "src", localAddress.description, filter])
        guard result.status == 0 else {
            throw SystemCallError(call: "\(executable) -K (\(result.output.prefix(200)))", errno: EIO)
        }
        return open.count
    }

    private static func readFile(_ path: String) throws(SystemCallError) -> String {
        let descriptor = try systemCall("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw SystemCallError(call: "read(\(path))", errno: errno) }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
