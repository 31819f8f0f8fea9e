import FTCPWire

/// The byte and FIN merge of the two servers' output queues (§3.2): "The primary server bridge
/// must not send any data to the client until it has received the data from S and its own TCP
/// layer"; it "matches the segment's payload against the content of the primary server output
/// queue" and sends "all of the matching payload bytes". Bytes that do not match are a divergence
/// (the servers were not deterministic): the primary's version goes out and the primary goes on
/// alone, unless the difference is tolerated (same length, a few bytes; ``DivergencePolicy``).
/// The FIN goes out once both kernels put it at the same place (§8: "the primary server must not
/// send any segments to the client before it receives identical segments from the secondary").
enum ByteMerge {
    /// A run of bytes both servers produced at the same place, taken out of both queues.
    enum Run: Equatable {
        /// Both servers sent these bytes.
        case agreed([UInt8])
        /// They differ in `differingBytes` bytes but are tolerated: the primary's bytes.
        case tolerated([UInt8], differingBytes: Int)
        /// They differ from `offset` on: the primary's bytes (the ones its kernel retransmits).
        case diverged([UInt8], offset: Int)
    }

    /// How a run that differs is judged: whether same-length differences are tolerated, and how
    /// many differing bytes this connection has been let off already.
    struct Tolerance {
        var toleratesSameLength: Bool
        var toleratedBytesSoFar: UInt64
    }

    /// Takes the longest run at the front of both queues (as far as both hold bytes in order, and
    /// at most `limit` bytes), or nil when one of them holds none there.
    static func takeRun(
        primary: inout SequenceRangeStore,
        secondary: inout SequenceRangeStore,
        tolerance: Tolerance,
        limit: Int? = nil
    ) -> Run? {
        let held = min(primary.contiguousCount, secondary.contiguousCount)
        let length = min(held, limit ?? held)
        if length == 0 { return nil }
        // The run is all either server has produced so far (no more bytes of one wait).
        let runIsWhole = primary.contiguousCount == secondary.contiguousCount && length == held
        let fromPrimary = primary.take(length)
        let fromSecondary = secondary.take(length)
        guard let offset = ByteComparison.firstDifference(fromPrimary, fromSecondary) else {
            return .agreed(fromSecondary)
        }
        guard tolerance.toleratesSameLength else { return .diverged(fromPrimary, offset: offset) }
        let (differing, last) = ByteComparison.differences(fromPrimary, fromSecondary)
        // Same length only if the streams are seen to agree again after the difference, or both
        // servers have said exactly this much: a run cut where one server's bytes end may be a
        // shorter, different message (an error where the other succeeded).
        let realigned = runIsWhole || length - last - 1 >= DivergencePolicy.realignmentBytes
        if realigned && differing <= DivergencePolicy.maximumRunBytes
            && tolerance.toleratedBytesSoFar + UInt64(differing) <= UInt64(DivergencePolicy.maximumBytesPerConnection)
        {
            return .tolerated(fromPrimary, differingBytes: differing)
        }
        return .diverged(fromPrimary, offset: offset)
    }

    /// Where the two streams' ends stand once every agreed byte before `position` was sent.
    enum Ending: Equatable {
        /// Neither kernel's FIN is here, or one is and the other has nothing more yet.
        case open
        /// Both FINs are at `position`: the merged FIN goes out.
        case bothFinished
        /// One kernel's FIN is at `position` while the other has bytes beyond it: that one ended
        /// early (its application died or closed), and the other goes on alone.
        case closedEarly(ServerRole)
    }

    /// Whether the stream ends at `position`. The one that goes on wins: an application that dies
    /// has its kernel close (or reset) every connection it held, while the other server's goes on
    /// serving them; a client is better off with the live server's bytes than with a close it did
    /// not ask for.
    static func ending(
        at position: SequenceNumber,
        primaryFIN: SequenceNumber?,
        secondaryFIN: SequenceNumber?,
        primaryHeldBytes: Int,
        secondaryHeldBytes: Int
    ) -> Ending {
        let primaryAtFIN = primaryFIN == position
        let secondaryAtFIN = secondaryFIN == position
        if primaryAtFIN && secondaryAtFIN { return .bothFinished }
        if primaryAtFIN && secondaryHeldBytes > 0 { return .closedEarly(.primary) }
        if secondaryAtFIN && primaryHeldBytes > 0 { return .closedEarly(.secondary) }
        return .open
    }
}
