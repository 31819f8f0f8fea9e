import FTCPWire

/// A client segment rewritten for the primary's kernel. The client numbers the servers' bytes in
/// the secondary's space (§6: "the client's TCP layer is synchronized to the sequence numbers that
/// the secondary server generated"), so its acknowledgment and SACK edges are moved into the
/// primary's space by + Δ (the inverse of §3.3's "subtracts Δ_seq"), and its TSecr, an echo of the
/// secondary's clock, onto the primary's by + Δts. The secondary's kernel takes the segment as it
/// is; its own sequence numbers are the client's and never change.
enum InboundTranslation {
    /// Rewrites the client's segment in place.
    static func rewriteForPrimary(_ segment: TCPSegment, by translation: SequenceSpaceTranslation) {
        segment.setAcknowledgmentNumber(translation.primarySequence(fromClient: segment.acknowledgmentNumber))
        segment.mapSACKBlocks { translation.primaryBlock(fromClient: $0) }
        if translation.timestampOffset != 0, let timestamps = segment.timestamps {
            segment.setTimestamps(
                value: timestamps.value,
                echoReply: translation.primaryEchoReply(fromClient: timestamps.echoReply)
            )
        }
    }
}
