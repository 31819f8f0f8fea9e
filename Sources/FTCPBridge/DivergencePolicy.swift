/// What the merge does when the two servers' bytes differ at the same place of a stream.
///
/// `strict` (the default) ends the connection's protection at the first different byte: the
/// primary serves it alone. `sameLength` is for applications that are deterministic but for a
/// few bytes of the same length (an HTTP `Date` header straddling a second, a process id, a
/// cancel key): the client gets the primary's version of those bytes and the connection stays
/// protected, within ``maximumRunBytes`` and ``maximumBytesPerConnection``; anything past them
/// is a divergence as before.
public struct DivergencePolicy: Equatable, Sendable, CustomStringConvertible {
    public enum Tolerance: String, Equatable, Sendable {
        case strict
        case sameLength = "same-length"
    }

    /// The tolerance of ports not named in `ports`.
    public var defaultTolerance: Tolerance
    /// Per local port (the protected port of a client's connection; the local port of one the
    /// servers open).
    public var ports: [UInt16: Tolerance]

    public init(defaultTolerance: Tolerance = .strict, ports: [UInt16: Tolerance] = [:]) {
        self.defaultTolerance = defaultTolerance
        self.ports = ports
    }

    public static let strict = DivergencePolicy()

    /// Most bytes that may differ within one run of bytes merged at once: a timestamp, a pid or a
    /// key is a few bytes; more than this is different content, not a different value.
    public static let maximumRunBytes = 64
    /// Most bytes that may differ over a connection's life: room for a `Date` header that changes
    /// on one server a moment before the other (2–5 bytes) at every one of a thousand responses,
    /// while a connection whose servers keep disagreeing is still found out.
    public static let maximumBytesPerConnection = 4_096
    /// Equal bytes that must follow a run's last difference (unless the run is all both servers
    /// have sent so far) before it counts as the same length: a shorter, different message (an
    /// error where the other server succeeded) must not pass for a different value.
    public static let realignmentBytes = 16

    public func tolerance(forPort port: UInt16) -> Tolerance { ports[port] ?? defaultTolerance }

    /// Parses `strict`, `same-length`, or a comma-separated list of `PORT=strict|same-length`
    /// (ports not named stay strict).
    public init?(_ text: String) {
        if let whole = Tolerance(rawValue: text) {
            self.init(defaultTolerance: whole)
            return
        }
        var ports: [UInt16: Tolerance] = [:]
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", omittingEmptySubsequences: false)
            guard pair.count == 2, let port = UInt16(pair[0]), port != 0,
                let tolerance = Tolerance(rawValue: String(pair[1]))
            else { return nil }
            ports[port] = tolerance
        }
        guard !ports.isEmpty else { return nil }
        self.init(ports: ports)
    }

    public var description: String {
        guard !ports.isEmpty else { return defaultTolerance.rawValue }
        return ports.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.rawValue)" }.joined(separator: ",")
    }
}
