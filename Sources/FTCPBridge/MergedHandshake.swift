import FTCPWire

/// The one SYN-ACK (or, for a connection the servers open, the one SYN) the other end gets for
/// the two kernels' answers. §7.1: once the secondary's SYN-ACK is in, the primary's bridge
/// "calculates the sequence number offset Δ_seq" and "constructs the SYN segment to be sent to the
/// client", whose "MSS field ... is set to the minimum" of the two; §7.2 does the same for the two
/// kernels' SYNs to an unreplicated server. The segment carries the secondary's ISN (the client
/// lives in the secondary's space), the smaller window, the secondary's window scale (it takes over
/// alone later), and SACK and timestamps only where every end offered them. Other options (TFO,
/// MPTCP, MD5, experimental) are left out on purpose.
struct MergedHandshake {
    /// The primary's kernel's SYN or SYN-ACK.
    let primary: HandshakeOptions
    /// The secondary's kernel's SYN or SYN-ACK.
    let secondary: HandshakeOptions

    /// The merged SYN-ACK to the client, acknowledging its SYN, and what it tells the client.
    func synACK(
        from secondaryInitialSequence: SequenceNumber,
        to client: ClientStream,
        addressing: ClientAddressing
    ) -> (segment: TCPPacketFields, advertised: ClientAdvertisement) {
        let ack = client.initialSequence + 1
        let fields = addressing.segment(
            sequence: secondaryInitialSequence,
            acknowledgment: ack,
            flags: [.syn, .ack],
            window: window,
            options: synACKOptions(client: client.handshake)
        )
        return (fields, ClientAdvertisement(acknowledgment: ack, edge: ack + UInt32(window)))
    }

    /// The merged SYN to the remote end of a connection the servers open.
    func outboundSYN(from secondaryInitialSequence: SequenceNumber, addressing: ClientAddressing) -> TCPPacketFields {
        addressing.segment(
            sequence: secondaryInitialSequence,
            acknowledgment: SequenceNumber(0),
            flags: [.syn],
            window: window,
            options: outboundSYNOptions
        )
    }

    /// The options of the merged SYN-ACK to a client whose SYN carried `client`.
    func synACKOptions(client: HandshakeOptions) -> [TCPOption] {
        let sack = client.sackPermitted && primary.sackPermitted && secondary.sackPermitted
        let timestamps = client.timestamps != nil && primary.timestamps != nil && secondary.timestamps != nil
        return Self.options(
            maximumSegmentSize: smallerMaximumSegmentSize,
            sack: sack,
            timestamps: timestamps ? secondary.timestamps : nil,
            windowScale: client.windowScale != nil ? secondary.windowScale : nil
        )
    }

    /// The options of the merged SYN of a connection the servers open: the remote end has not
    /// spoken yet, so only the two kernels' offers count.
    var outboundSYNOptions: [TCPOption] {
        Self.options(
            maximumSegmentSize: smallerMaximumSegmentSize,
            sack: primary.sackPermitted && secondary.sackPermitted,
            timestamps: primary.timestamps != nil ? secondary.timestamps.map { (value: $0.value, echoReply: 0) } : nil,
            windowScale: primary.windowScale != nil ? secondary.windowScale : nil
        )
    }

    /// The window of the merged SYN or SYN-ACK (never scaled): the smaller.
    var window: UInt16 { min(primary.window, secondary.window) }

    private var smallerMaximumSegmentSize: UInt16? {
        [primary.maximumSegmentSize, secondary.maximumSegmentSize].compactMap { $0 }.min()
    }

    /// The secondary's SYN-ACK to the client when the primary's kernel refused it and the secondary
    /// serves alone (Δ stays 0): its own ISN, window and options, less the options the client did
    /// not offer.
    static func secondaryAloneSYNACK(
        _ secondary: HandshakeOptions,
        from secondaryInitialSequence: SequenceNumber,
        to client: ClientStream,
        addressing: ClientAddressing
    ) -> TCPPacketFields {
        let options = options(
            maximumSegmentSize: secondary.maximumSegmentSize,
            sack: client.handshake.sackPermitted && secondary.sackPermitted,
            timestamps: client.handshake.timestamps != nil ? secondary.timestamps : nil,
            windowScale: client.handshake.windowScale != nil ? secondary.windowScale : nil
        )
        return addressing.segment(
            sequence: secondaryInitialSequence,
            acknowledgment: client.initialSequence + 1,
            flags: [.syn, .ack],
            window: secondary.window,
            options: options
        )
    }

    /// The options of a SYN or SYN-ACK, in the order Linux writes them (timestamps, or two NOPs
    /// after SACK-permitted to keep the alignment; a NOP before the window scale).
    static func options(
        maximumSegmentSize: UInt16?,
        sack: Bool,
        timestamps: (value: UInt32, echoReply: UInt32)?,
        windowScale: UInt8?
    ) -> [TCPOption] {
        var options: [TCPOption] = []
        if let maximumSegmentSize { options.append(.maximumSegmentSize(maximumSegmentSize)) }
        if sack { options.append(.sackPermitted) }
        if let timestamps {
            options.append(.timestamps(value: timestamps.value, echoReply: timestamps.echoReply))
        } else if sack {
            options.append(contentsOf: [.noOperation, .noOperation])
        }
        if let windowScale { options.append(contentsOf: [.noOperation, .windowScale(windowScale)]) }
        return options
    }
}
