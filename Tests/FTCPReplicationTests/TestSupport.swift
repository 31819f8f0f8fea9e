import Crypto
import FTCPReplication

/// A seeded xorshift64* generator: the same seed gives the same bytes on every run, so a
/// randomized test that fails can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x1234_5678_9ABC_DEF1 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}

enum Fixtures {
    /// The shared key of most tests (bytes 0, 1, 2, … 31).
    static let keyBytes: [UInt8] = Array(0..<32)
    static let key = try! ReplicationKey(bytes: keyBytes)
    /// A different key of the same length.
    static let otherKey = try! ReplicationKey(bytes: Array(100..<132))

    static let heartbeat = ReplicationHeartbeat(
        sentAtMilliseconds: 0x0102_0304_0506_0708,
        state: 7,
        connectionCount: 0xDEAD_BEEF,
        sawPeerTrafficAtMilliseconds: 0xFFFF_FFFF_FFFF_FFFE
    )

    /// A small SYN-sized stand-in for an IPv4/TCP packet (the channel does not interpret it).
    static let packet: [UInt8] = (0..<60).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }

    static func sealer(_ role: ReplicationRole, epoch: UInt64 = 1_000, key: ReplicationKey = key) -> ReplicationSealer {
        ReplicationSealer(key: key, role: role, epoch: epoch)
    }

    static func opener(_ role: ReplicationRole, key: ReplicationKey = key) -> ReplicationOpener {
        ReplicationOpener(key: key, localRole: role)
    }
}

/// Builds a datagram field by field and tags it with `key`, for inputs no sealer would produce.
struct HandmadeDatagram {
    var magic: [UInt8] = [0x46, 0x54, 0x43, 0x52]
    var version: UInt8 = 1
    var type: UInt8 = 3
    var role: UInt8 = ReplicationRole.secondary.rawValue
    var reserved: UInt8 = 0
    var epoch: UInt64 = 1_000
    var counter: UInt64 = 0
    var body: [UInt8] = []
    /// The body length field; the body's real length when nil.
    var declaredLength: UInt32?

    func bytes(key: [UInt8] = Fixtures.keyBytes) -> [UInt8] {
        var out = magic + [version, type, role, reserved]
        out += bigEndian(epoch) + bigEndian(counter) + bigEndian(declaredLength ?? UInt32(body.count))
        out += body
        let tag = HMAC<SHA256>.authenticationCode(for: out, using: SymmetricKey(data: key))
        return out + Array(tag)
    }
}

func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

/// The heartbeat body of `Fixtures.heartbeat`, as the format documents it.
let heartbeatBody: [UInt8] =
    [1, 7] + bigEndian(UInt64(0x0102_0304_0506_0708)) + bigEndian(UInt32(0xDEAD_BEEF))
    + bigEndian(UInt64(0xFFFF_FFFF_FFFF_FFFE))

extension Result {
    var failure: Failure? {
        if case let .failure(error) = self { return error }
        return nil
    }

    var success: Success? {
        if case let .success(value) = self { return value }
        return nil
    }
}
