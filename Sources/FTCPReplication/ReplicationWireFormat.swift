/// The byte layout of one replication channel datagram, declared once.
///
/// Every datagram is one UDP payload, all integers big-endian:
///
/// ```
/// offset  size  field
///      0     4  magic "FTCR" (0x46 0x54 0x43 0x52)
///      4     1  format version, currently 1
///      5     1  message type: 1 segment, 2 inject, 3 heartbeat, 4 resend request, 5 segments,
///                 6 released, 7 digests, 8 relay whole
///                 (``ReplicationMessage/Kind``)
///      6     1  sender role: 1 primary, 2 secondary
///      7     1  reserved, must be 0
///      8     8  sender epoch (chosen by the sender at process start, never reused or lowered)
///     16     8  per-epoch message counter (strictly increasing per sender, starts at 0)
///     24     4  body length N (at most 65,000)
///     28     N  body (see below)
///   28+N    32  HMAC-SHA256 over bytes 0 ..< 28+N, keyed with the shared replication key
/// ```
///
/// The datagram is exactly `28 + N + 32` bytes long (at most 65,060, which fits one IPv4 UDP
/// datagram of 65,507 bytes of payload); anything else is malformed.
///
/// Bodies:
/// - segment, inject: the IPv4 packet itself, 1 ... 65,000 bytes, not interpreted here.
/// - heartbeat: its own version (1 byte, currently 3), state (1), sent-at milliseconds (8),
///   connection count (4), saw-peer-traffic-at milliseconds (8) — 22 bytes; version 2 appends
///   the sender's hardware address (6) — 28 bytes; version 3 appends its capabilities (1,
///   ``ReplicationCapabilities``) — 29 bytes, with the hardware address all zero when the sender
///   names none. A later heartbeat version may only append fields: a receiver reads the fields
///   it knows from a longer body with a higher version and ignores the rest (every release
///   since version 2 does), so a node learns from a version 1 or 2 heartbeat that its peer reads
///   none of the messages a capability stands for; version 0 or a body shorter than its version
///   needs is malformed.
/// - resend request: first counter (8), count (4, 1 ... 1024) — 12 bytes.
/// - segments: packet count (2, at least 1), then for each packet its length (2, at least 1)
///   and its bytes; the lengths add up to the body exactly.
/// - released: connection count (2, 1 ... 1024), then for each the client's address (4), the
///   client's port (2) and the server's port (2); the body is exactly 2 + 8 × count bytes.
/// - digests: segment count (2, at least 1), then for each segment its header length (2,
///   1 ... 120), the header packet, the payload length (4, 1 ... 65,535), the piece length
///   (2, at least 1) and 16 bytes of digest per piece (⌈payload ÷ piece⌉ pieces); the entries
///   fill the body exactly.
/// - relay whole: as released.
///
/// The envelope is the same in every format version, past and future: the magic at 0, the
/// version byte at 4, the body length at 24 and the 32-byte tag over everything before it at
/// the end. A receiver that meets another version checks only the envelope and the tag, and an
/// authentic datagram of another version tells it the peer runs an incompatible ftcp
/// (``ReplicationDropReason/incompatibleVersion(peer:local:)``), so that a rolling upgrade across
/// format versions never fails silently.
///
/// The fixed header is validated (length, magic, version, reserved byte, role value) before
/// the MAC is computed, so cheap noise costs no hashing; everything else is looked at only
/// once the MAC has proved the datagram comes from a holder of the key.
enum ReplicationWireFormat {
    static let magic: [UInt8] = [0x46, 0x54, 0x43, 0x52]
    static let version: UInt8 = 1

    /// Field offsets in the fixed header.
    enum Field {
        static let magic = 0..<4
        static let version = 4
        static let messageType = 5
        static let role = 6
        static let reserved = 7
        static let epoch = 8..<16
        static let counter = 16..<24
        static let bodyLength = 24..<28
    }

    static let headerLength = 28
    static let tagLength = 32
    /// The largest body any message may carry (a packet of this size still fits one UDP datagram).
    static let maximumBodyLength = 65_000
    static let minimumDatagramLength = headerLength + tagLength
    static let maximumDatagramLength = headerLength + maximumBodyLength + tagLength

    /// Heartbeat body layout, version 1.
    enum HeartbeatField {
        static let version = 0
        static let state = 1
        static let sentAt = 2..<10
        static let connectionCount = 10..<14
        static let sawPeerTrafficAt = 14..<22
        /// Version 2 appends the sender's hardware address (6 bytes).
        static let hardwareAddress = 22..<28
        /// Version 3 appends the sender's capabilities (1 byte).
        static let capabilities = 28
    }

    static let heartbeatVersion: UInt8 = 1
    static let heartbeatLength = 22
    static let heartbeatWithHardwareAddressVersion: UInt8 = 2
    static let heartbeatWithHardwareAddressLength = 28
    static let heartbeatWithCapabilitiesVersion: UInt8 = 3
    static let heartbeatWithCapabilitiesLength = 29
    static let resendRequestLength = 12
    static let maximumResendCount: UInt32 = 1024
    /// Bytes a segments body spends on its count, and on each packet's length.
    static let segmentsCountLength = 2
    static let segmentsLengthFieldLength = 2
    static let releasedEntryLength = 8
    /// The longest header packet of a digested segment: 60-byte IPv4 and TCP headers.
    static let maximumDigestedHeaderLength = 120
    static let maximumReleasedCount = 1024
}

// MARK: - Big-endian helpers

extension Array where Element == UInt8 {
    /// Appends `value` in network byte order.
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        Swift.withUnsafeBytes(of: &big) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a big-endian integer at `range`; the caller has checked the range is in bounds.
    func readBigEndian<T: FixedWidthInteger>(_ range: Range<Int>, as type: T.Type = T.self) -> T {
        precondition(range.count == MemoryLayout<T>.size && range.lowerBound >= 0 && range.upperBound <= count)
        var value: T = 0
        for index in range {
            value = value << 8 | T(self[index])
        }
        return value
    }
}
