/// Messages a node's build reads beyond those of the channel's first release, said in every
/// heartbeat so that nodes of two releases work together during a rolling upgrade: each sends
/// the other only what the other says it reads. A bit this build does not know is ignored.
public struct ReplicationCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Reads `digests` (type 7) and `relay whole` (type 8): a secondary may relay its kernel's
    /// new bytes to this primary as digests, and this secondary resends a connection whole when
    /// asked. A node without it gets bytes and is never asked.
    public static let digests = ReplicationCapabilities(rawValue: 1 << 0)

    /// Everything this build reads.
    public static let thisBuild: ReplicationCapabilities = [.digests]
}

extension ReplicationCapabilities: CustomStringConvertible {
    public var description: String {
        var names: [String] = []
        if contains(.digests) { names.append("digests") }
        let unknown = rawValue & ~ReplicationCapabilities.thisBuild.rawValue
        if unknown != 0 { names.append("unknown 0x\(String(unknown, radix: 16))") }
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }
}
