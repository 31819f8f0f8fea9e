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

    /// The most claims one connection holds: pieces of at least 496 bytes (the MSS floor less
    /// 40) for the 8 MiB a server may have queued. A secondary that sends more than that before
    /// the primary catches up is refused the rest, and its kernel retransmits them whole.
    static let limit = 16_384

    /// In order of `start`, from `head` on (taken claims are dropped in batches, so taking the
    /// first costs nothing per claim).
    private var storage: [Claim] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    var first: Claim? { isEmpty ? nil : storage[head] }
    var highestEnd: SequenceNumber? { isEmpty ? nil : storage[storage.count - 1].end }

    /// Whether the claim was kept (false: it overlaps one held, or the connection holds too many).
    mutating func insert(_ claim: Claim) -> Bool {
        guard claim.length > 0, count < Self.limit else { return false }
        // The index of the first claim that ends after the new one's start.
        var index = storage.count
        while index > head && storage[index - 1].end > claim.start { index -= 1 }
        if index < storage.count && storage[index].start < claim.end { return false }
        storage.insert(claim, at: index)
        return true
    }

    /// Where the first claim that begins after `position` begins.
    func nextStart(after position: SequenceNumber) -> SequenceNumber? {
        storage[head...].first { $0.start > position }?.start
    }

    /// Removes the first claim.
    mutating func removeFirst() {
        guard !isEmpty else { return }
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 256 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    /// Drops the claims that end at or before `position` (their bytes were sent); returns how
    /// many start before it and end after it (sent in part from bytes: they can no longer be
    /// checked and are dropped too).
    @discardableResult
    mutating func advance(to position: SequenceNumber) -> Int {
        var straddling = 0
        while let first, first.start < position {
            if first.end > position { straddling += 1 }
            removeFirst()
        }
        return straddling
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}
