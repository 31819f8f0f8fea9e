import FTCPWire

/// How the primary's kernel's numbers map to the client's (which are the secondary's), §3.3:
/// Δ = ISN_P − ISN_S, and "the primary server bridge subtracts Δ_seq from the sequence numbers of
/// all segments it receives from the primary server's TCP layer". Timestamps are moved the same
/// way by Δts = TSval_P − TSval_S (taken from the two SYN-ACKs; design notes), so the client sees
/// one clock. All arithmetic is modulo 2^32.
struct SequenceSpaceTranslation: Equatable, Sendable {
    /// Δ = ISN_P − ISN_S.
    let sequenceOffset: UInt32
    /// Δts = TSval_P − TSval_S; 0 when either kernel sent no timestamps.
    let timestampOffset: UInt32

    /// No offset: before both ISNs are known, or when the secondary serves alone from the start.
    static let identity = SequenceSpaceTranslation(sequenceOffset: 0, timestampOffset: 0)

    init(sequenceOffset: UInt32, timestampOffset: UInt32) {
        self.sequenceOffset = sequenceOffset
        self.timestampOffset = timestampOffset
    }

    /// The offsets between the two kernels' SYNs (or SYN-ACKs): their ISNs and, if both sent
    /// timestamps, their TSvals.
    init(
        primaryInitialSequence: SequenceNumber,
        primaryHandshake: HandshakeOptions,
        secondaryInitialSequence: SequenceNumber,
        secondaryHandshake: HandshakeOptions
    ) {
        sequenceOffset = primaryInitialSequence.offset(from: secondaryInitialSequence)
        if let primaryClock = primaryHandshake.timestamps, let secondaryClock = secondaryHandshake.timestamps {
            timestampOffset = primaryClock.value &- secondaryClock.value
        } else {
            timestampOffset = 0
        }
    }

    /// A sequence number of the primary's kernel, in the client's space (− Δ).
    func clientSequence(fromPrimary sequence: SequenceNumber) -> SequenceNumber {
        sequence - sequenceOffset
    }

    /// A sequence number or acknowledgment of the client's space, in the primary's kernel's (+ Δ):
    /// the client's ACK and SACK edges, which name the secondary's bytes.
    func primarySequence(fromClient sequence: SequenceNumber) -> SequenceNumber {
        sequence + sequenceOffset
    }

    /// A SACK block of the client's, in the primary's kernel's space.
    func primaryBlock(fromClient block: SACKBlock) -> SACKBlock {
        SACKBlock(left: primarySequence(fromClient: block.left), right: primarySequence(fromClient: block.right))
    }

    /// A TSval of the primary's kernel, on the secondary's clock (the one the client sees; − Δts).
    func clientTimestamp(fromPrimary value: UInt32) -> UInt32 {
        value &- timestampOffset
    }

    /// A TSecr of the client's (an echo of the secondary's clock), on the primary's clock (+ Δts).
    func primaryEchoReply(fromClient echoReply: UInt32) -> UInt32 {
        echoReply &+ timestampOffset
    }

    /// A primary segment's options with its TSval moved to the client's clock; the rest as they are.
    func clientOptions(fromPrimary options: [TCPOption]) -> [TCPOption] {
        options.map { option in
            if case let .timestamps(value, echoReply) = option {
                return .timestamps(value: clientTimestamp(fromPrimary: value), echoReply: echoReply)
            }
            return option
        }
    }
}
