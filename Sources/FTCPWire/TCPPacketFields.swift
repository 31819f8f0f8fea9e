/// An IPv4/TCP packet as plain values: what a bridge decides to send, and
/// what a test writes down. `init(parsing:)` reads a validated view;
/// `build()` writes the packet with correct checksums.
///
/// Options are kept in order, No-Operations included; End of Option List and
/// the zero padding after it are not listed: `build()` pads the option space
/// to a multiple of four bytes with zeros, which is the same thing on the wire.
public struct TCPPacketFields: Hashable, Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    /// The raw window field (already shifted by the sender's scale).
    public var window: UInt16
    public var urgentPointer: UInt16
    public var options: [TCPOption]
    public var payload: [UInt8]
    public var timeToLive: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    public var typeOfService: UInt8

    public init(
        source: IPv4Address,
        destination: IPv4Address,
        sourcePort: UInt16,
        destinationPort: UInt16,
        sequenceNumber: SequenceNumber,
        acknowledgmentNumber: SequenceNumber = SequenceNumber(0),
        flags: TCPFlags,
        window: UInt16 = 65535,
        urgentPointer: UInt16 = 0,
        options: [TCPOption] = [],
        payload: [UInt8] = [],
        timeToLive: UInt8 = 64,
        identification: UInt16 = 0,
        dontFragment: Bool = true,
        typeOfService: UInt8 = 0
    ) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.options = options
        self.payload = payload
        self.timeToLive = timeToLive
        self.identification = identification
        self.dontFragment = dontFragment
        self.typeOfService = typeOfService
    }

    /// Reads every field out of a validated packet (IP options are not kept).
    public init(parsing packet: TCPPacket) {
        let ip = packet.ip
        let tcp = packet.tcp
        self.init(
            source: ip.source,
            destination: ip.destination,
            sourcePort: tcp.sourcePort,
            destinationPort: tcp.destinationPort,
            sequenceNumber: tcp.sequenceNumber,
            acknowledgmentNumber: tcp.acknowledgmentNumber,
            flags: tcp.flags,
            window: tcp.window,
            urgentPointer: tcp.urgentPointer,
            options: tcp.options,
            payload: Array(tcp.payload),
            timeToLive: ip.timeToLive,
            identification: ip.identification,
            dontFragment: ip.dontFragment,
            typeOfService: ip.typeOfService
        )
    }

    /// Validates and parses a packet held in an array.
    public init(parsing bytes: [UInt8]) throws(WireError) {
        var copy = bytes
        let result: Result<TCPPacketFields, WireError> = copy.withUnsafeMutableBytes { buffer in
            do throws(WireError) {
                return .success(TCPPacketFields(parsing: try TCPPacket(validating: buffer)))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    /// Option bytes before padding.
    public var optionsLength: Int { options.reduce(0) { $0 + $1.encodedLength } }

    /// TCP header length in bytes, options padded to a multiple of four.
    public var tcpHeaderLength: Int { TCPSegment.minimumHeaderLength + (optionsLength + 3) / 4 * 4 }

    /// Whole datagram length.
    public var totalLength: Int { IPv4Packet.minimumHeaderLength + tcpHeaderLength + payload.count }

    /// Sequence space the segment occupies: payload bytes plus one each for SYN and FIN.
    public var sequenceLength: UInt32 {
        UInt32(payload.count) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }

    /// Writes the packet into `buffer` and returns its length.
    ///
    /// Throws `.fieldOverflow` when the options exceed 40 bytes or the packet
    /// 65,535, and `.truncated(.buffer, …)` when `buffer` is too small.
    public func build(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        let headers = try buildHeaders(into: buffer, payloadLength: payload.count, payloadInBuffer: true)
        let total = headers + payload.count
        if !payload.isEmpty {
            payload.withUnsafeBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[headers..<total]).copyMemory(from: bytes)
            }
        }
        // Both views are valid by construction; the initialisers cannot fail here.
        let view = try TCPPacket(validating: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total]))
        view.tcp.updateChecksum(source: source, destination: destination)
        return total
    }

    /// Writes the IPv4 and TCP headers of a packet whose `payloadLength` bytes of payload lie
    /// elsewhere (this value's own ``payload`` is not read), and returns the headers' length:
    /// the IPv4 header complete with its checksum and a total length that counts the payload,
    /// the TCP checksum left 0 for the sender to fill (``GatheredChecksum``) or the offload to.
    ///
    /// Throws as ``build(into:)`` does, the buffer needing room for the headers only.
    public func buildHeaders(into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int) throws(WireError) -> Int {
        try buildHeaders(into: buffer, payloadLength: payloadLength, payloadInBuffer: false)
    }

    /// `payloadInBuffer`: the buffer must have room for the payload after the headers too.
    private func buildHeaders(
        into buffer: UnsafeMutableRawBufferPointer,
        payloadLength: Int,
        payloadInBuffer: Bool
    ) throws(WireError) -> Int {
        let optionSpace = TCPSegment.maximumHeaderLength - TCPSegment.minimumHeaderLength
        guard optionsLength <= optionSpace else {
            throw .fieldOverflow(field: "TCP options length", value: optionsLength, limit: optionSpace)
        }
        for case let .sack(blocks) in options where blocks.isEmpty || blocks.count > TCPOption.maximumSACKBlocks {
            throw .fieldOverflow(field: "SACK block count", value: blocks.count, limit: TCPOption.maximumSACKBlocks)
        }
        for case let .unknown(kind, data) in options where data.count > optionSpace - 2 || kind <= 1 {
            throw .fieldOverflow(field: "unknown option \(kind) length", value: data.count + 2, limit: optionSpace)
        }
        let headerLength = tcpHeaderLength
        let headers = IPv4Packet.minimumHeaderLength + headerLength
        let total = headers + payloadLength
        guard total <= Int(UInt16.max) else {
            throw .fieldOverflow(field: "IPv4 total length", value: total, limit: Int(UInt16.max))
        }
        let needed = payloadInBuffer ? total : headers
        guard buffer.count >= needed else { throw .truncated(layer: .buffer, needed: needed, available: buffer.count) }

        let ip = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<headers])
        ip[0] = 0x45
        ip[1] = typeOfService
        ip.setUInt16(UInt16(total), at: 2)
        ip.setUInt16(identification, at: 4)
        ip.setUInt16(dontFragment ? 0x4000 : 0, at: 6)
        ip[8] = timeToLive
        ip[9] = IPv4Packet.tcpProtocol
        ip.setUInt16(0, at: 10)
        ip.setUInt32(source.value, at: 12)
        ip.setUInt32(destination.value, at: 16)
        var ipChecksum = InternetChecksum()
        ipChecksum.add(bytes: UnsafeRawBufferPointer(rebasing: ip[0..<IPv4Packet.minimumHeaderLength]))
        ip.setUInt16(ipChecksum.value, at: 10)

        let tcp = UnsafeMutableRawBufferPointer(rebasing: ip[IPv4Packet.minimumHeaderLength...])
        tcp.setUInt16(sourcePort, at: 0)
        tcp.setUInt16(destinationPort, at: 2)
        tcp.setUInt32(sequenceNumber.rawValue, at: 4)
        tcp.setUInt32(acknowledgmentNumber.rawValue, at: 8)
        tcp[12] = UInt8(headerLength / 4) << 4
        tcp[13] = flags.rawValue
        tcp.setUInt16(window, at: 14)
        tcp.setUInt16(0, at: 16)
        tcp.setUInt16(urgentPointer, at: 18)
        var offset = TCPSegment.minimumHeaderLength
        for option in options {
            option.encode(into: tcp, at: offset)
            offset += option.encodedLength
        }
        while offset < headerLength {
            tcp[offset] = TCPOption.Kind.endOfOptionList
            offset += 1
        }
        return headers
    }

    /// The packet as a new array.
    public func build() throws(WireError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: totalLength)
        let result: Result<Int, WireError> = bytes.withUnsafeMutableBytes { buffer in
            do throws(WireError) { return .success(try build(into: buffer)) } catch { return .failure(error) }
        }
        _ = try result.get()
        return bytes
    }
}
