import FTCPWire

/// Where segments to the client come from and go to: the service address and port the client
/// connected to (§3.2: "the address of the primary server P in the source field and the address
/// of the client C in the destination field").
struct ClientAddressing: Sendable {
    let key: ConnectionKey
    let serviceAddress: IPv4Address

    /// A segment to the client with these fields.
    func segment(
        sequence: SequenceNumber,
        acknowledgment: SequenceNumber,
        flags: TCPFlags,
        window: UInt16,
        options: [TCPOption],
        payload: [UInt8] = []
    ) -> TCPPacketFields {
        TCPPacketFields(
            source: serviceAddress,
            destination: key.clientAddress,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequenceNumber: sequence,
            acknowledgmentNumber: acknowledgment,
            flags: flags,
            window: window,
            options: options,
            payload: payload
        )
    }

    /// A server's segment as it is, readdressed from the service address.
    func relayed(_ segment: TCPSegment) -> TCPPacketFields {
        TCPPacketFields(
            source: serviceAddress,
            destination: key.clientAddress,
            sourcePort: key.serverPort,
            destinationPort: key.clientPort,
            sequenceNumber: segment.sequenceNumber,
            acknowledgmentNumber: segment.acknowledgmentNumber,
            flags: segment.flags,
            window: segment.window,
            urgentPointer: segment.urgentPointer,
            options: segment.options,
            payload: Array(segment.payload)
        )
    }

    /// The primary's segment moved into the client's space (sequence number by Δ, TSval by Δts),
    /// otherwise as it is.
    func translatedFromPrimary(_ segment: TCPSegment, by translation: SequenceSpaceTranslation) -> TCPPacketFields {
        var fields = relayed(segment)
        fields.sequenceNumber = translation.clientSequence(fromPrimary: segment.sequenceNumber)
        fields.options = translation.clientOptions(fromPrimary: fields.options)
        return fields
    }
}
