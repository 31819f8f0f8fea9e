import FTCPWire

/// What the secondary's kernel sent of a connection, as digests (`--relay digests`): ranges of
/// the client's sequence space, each with the digest of the bytes the secondary's kernel put
/// there, waiting for the primary's own bytes of the same range to be compared.
///
/// Claims never overlap: the secondary digests only a kernel's first sending of new bytes, which
/// starts where its last one ended; a later claim that overlaps one held (a datagram resent
/// after a loss, a kernel that cut differently) is refused, and the range is merged from the
/// bytes of the kernel's retransmission, which the secondary relays whole.
struct DigestClaims: Sendable {
    struct Claim: Equatable, Sendable {
        var start: SequenceNumber
        var length: Int
        var digest: PayloadDigest
        var end: SequenceNumber { start + UInt32(length) }
    }

    /// The most claims one connection holds: a kernel with 8 MiB in flight in 64 KiB segments
    /// has 128; a secondary that sends more without the primary catching up is refused them and
    /// its kernel retransmits them whole.
    static let limit = 4096

    /// In order of `start`.
    private(set) var claims: [Claim] = []

    var isEmpty: Bool { claims.isEmpty }
    var first: Claim? { claims.first }
    var highestEnd: SequenceNumber? { claims.last?.end }

    /// Whether the claim was kept (false: it overlaps one held, or the connection holds too many).
    mutating func insert(_ claim: Claim) -> Bool {
        guard claim.length > 0, claims.count < Self.limit else { return false }
        // The index of the first claim that ends after the new one's start.
        var index = claims.count
        while index > 0 && claims[index - 1].end > claim.start { index -= 1 }
        if index < claims.count && claims[index].start < claim.end { return false }
        claims.insert(claim, at: index)
        return true
    }

    /// Where the first claim that begins after `position` begins.
    func nextStart(after position: SequenceNumber) -> SequenceNumber? {
        claims.first { $0.start > position }?.start
    }

    /// Removes the first claim.
    mutating func removeFirst() { claims.removeFirst() }

    /// Drops the claims that end at or before `position` (their bytes were sent); returns how
    /// many start before it and end after it (sent in part from bytes: they can no longer be
    /// checked and are dropped too).
    @discardableResult
    mutating func advance(to position: SequenceNumber) -> Int {
        var straddling = 0
        while let first = claims.first, first.start < position {
            if first.end > position { straddling += 1 }
            claims.removeFirst()
        }
        return straddling
    }

    mutating func removeAll() { claims.removeAll() }
}
