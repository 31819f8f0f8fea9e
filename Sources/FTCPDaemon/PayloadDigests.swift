import Crypto
import FTCPBridge
import FTCPReplication

/// The digest the bridges compare the secondary's bytes by (`--relay digests`): the first 16
/// bytes of SHA-256, and its 16-byte form on the replication channel.
enum PayloadDigests {
    static let sha256: PayloadDigester = { bytes in
        SHA256.hash(data: bytes).withUnsafeBytes { hash in
            PayloadDigest(
                high: UInt64(bigEndian: hash.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                low: UInt64(bigEndian: hash.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
    }

    /// A relay as the channel carries it.
    static func segment(_ relay: DigestedRelay) -> DigestedSegment {
        var digests: [UInt8] = []
        digests.reserveCapacity(relay.digests.count * DigestedSegment.digestLength)
        for digest in relay.digests {
            withUnsafeBytes(of: digest.high.bigEndian) { digests.append(contentsOf: $0) }
            withUnsafeBytes(of: digest.low.bigEndian) { digests.append(contentsOf: $0) }
        }
        return DigestedSegment(
            header: relay.header,
            payloadLength: UInt32(relay.payloadLength),
            pieceLength: UInt16(clamping: relay.pieceLength),
            digests: digests
        )
    }

    /// The digests a segment of the channel carries, in order.
    static func digests(of segment: DigestedSegment) -> [PayloadDigest] {
        segment.digests.withUnsafeBytes { bytes in
            stride(from: 0, to: bytes.count, by: DigestedSegment.digestLength).map { offset in
                PayloadDigest(
                    high: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                    low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                )
            }
        }
    }
}
