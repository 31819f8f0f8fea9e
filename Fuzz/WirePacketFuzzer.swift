import FTCPWire

/// Fuzzes the wire layer's packet views: `IPv4Packet` and `TCPPacket` validation of arbitrary
/// bytes, every accessor of a packet that validated (options, SACK blocks, timestamps, payload,
/// checksums), the parse → build → parse round trip of `TCPPacketFields`, and the in-place
/// setters, which must keep a correct checksum correct and the packet valid.
///
/// Input: one control byte (bit 0: allow trailing bytes; bits 1...7: which setters to apply),
/// then the packet.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWirePacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let control = input.byte()
    let packet = input.rest()
    let allowTrailingBytes = control & 1 != 0

    var ipCopy = packet
    ipCopy.withUnsafeMutableBytes { checkIPv4(buffer: $0, allowTrailingBytes: allowTrailingBytes) }

    var copy = packet
    let parsed: (fields: TCPPacketFields, datagram: [UInt8])? = copy.withUnsafeMutableBytes { buffer in
        let view: TCPPacket
        do throws(WireError) {
            view = try TCPPacket(validating: buffer, allowTrailingBytes: allowTrailingBytes)
        } catch {
            require(!error.description.isEmpty)
            return nil
        }
        checkSegment(view.tcp)
        _ = view.isChecksumValid
        return (TCPPacketFields(parsing: view), Array(view.bytes))
    }
    guard let (fields, datagram) = parsed else { return 0 }
    checkRoundTrip(fields)
    checkRewrites(datagram, setters: control >> 1)
    return 0
}

/// What an IPv4 view that validated must satisfy, and its setters.
private func checkIPv4(buffer: UnsafeMutableRawBufferPointer, allowTrailingBytes: Bool) {
    guard let ip = try? IPv4Packet(validating: buffer, allowTrailingBytes: allowTrailingBytes) else { return }
    require(ip.version == 4 && ip.ihl >= 5)
    require(ip.bytes.count == ip.totalLength && ip.totalLength <= buffer.count)
    require(allowTrailingBytes || ip.totalLength == buffer.count)
    require(ip.headerLength >= IPv4Packet.minimumHeaderLength && ip.headerLength <= ip.totalLength)
    require(ip.options.count == ip.headerLength - IPv4Packet.minimumHeaderLength)
    require(ip.payload.count == ip.totalLength - ip.headerLength)
    require(!ip.moreFragments && ip.fragmentOffset == 0)
    _ = (ip.typeOfService, ip.identification, ip.dontFragment, ip.protocolNumber)

    ip.updateHeaderChecksum()
    require(ip.isHeaderChecksumValid, "a recomputed header checksum is not valid")
    let source = ip.source
    let destination = ip.destination
    ip.setSource(destination)
    ip.setDestination(source)
    ip.setTimeToLive(ip.timeToLive &- 1)
    require(ip.source == destination && ip.destination == source)
    require(ip.isHeaderChecksumValid, "an IPv4 setter broke the header checksum")
}

/// What a TCP view that validated must satisfy: bounds, and options that decode the same
/// whichever accessor reads them.
private func checkSegment(_ tcp: TCPSegment) {
    let headerLength = tcp.headerLength
    require(headerLength >= TCPSegment.minimumHeaderLength && headerLength <= TCPSegment.maximumHeaderLength)
    require(headerLength <= tcp.bytes.count)
    require(tcp.optionBytes.count == headerLength - TCPSegment.minimumHeaderLength)
    require(tcp.payloadLength == tcp.bytes.count - headerLength && tcp.payload.count == tcp.payloadLength)
    let flags = tcp.flags
    let expectedLength = UInt32(tcp.payloadLength) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    require(tcp.sequenceLength == expectedLength)
    _ = (tcp.sourcePort, tcp.destinationPort, tcp.sequenceNumber, tcp.acknowledgmentNumber, tcp.reservedBits)
    _ = (tcp.window, tcp.checksum, tcp.urgentPointer)

    // Slots tile the option space from its start, End of Option List last if present.
    let slots = tcp.optionSlots
    var next = TCPSegment.minimumHeaderLength
    for (index, slot) in slots.enumerated() {
        require(slot.offset == next && slot.length >= 1 && slot.offset + slot.length <= headerLength)
        if slot.kind == TCPOption.Kind.endOfOptionList { require(index == slots.count - 1) }
        next += slot.length
    }
    let optionSlots = slots.filter { $0.kind != TCPOption.Kind.endOfOptionList }
    let options = tcp.options
    require(options.count == optionSlots.count)
    for (slot, option) in zip(optionSlots, options) {
        require(option.kind == slot.kind && option.encodedLength == slot.length)
        require(tcp.decode(slot) == option)
    }

    // The single-option accessors read the first option of their kind.
    var mss: UInt16?
    var shift: UInt8?
    var sackPermitted = false
    var timestamps: (UInt32, UInt32)?
    var sack: [SACKBlock]?
    for option in options {
        switch option {
        case let .maximumSegmentSize(value) where mss == nil: mss = value
        case let .windowScale(value) where shift == nil: shift = value
        case .sackPermitted: sackPermitted = true
        case let .timestamps(value, echoReply) where timestamps == nil: timestamps = (value, echoReply)
        case let .sack(blocks) where sack == nil:
            require((1...TCPOption.maximumSACKBlocks).contains(blocks.count))
            sack = blocks
        case let .unknown(kind, _):
            require(kind > TCPOption.Kind.noOperation)
        default: break
        }
    }
    require(tcp.maximumSegmentSize == mss && tcp.windowScale == shift && tcp.isSACKPermitted == sackPermitted)
    require(tcp.timestamps?.value == timestamps?.0 && tcp.timestamps?.echoReply == timestamps?.1)
    require(tcp.sackBlocks == (sack ?? []))
    for kind in [TCPOption.Kind.maximumSegmentSize, TCPOption.Kind.sack, 0, 1, 200] {
        if let slot = tcp.firstSlot(ofKind: kind) { require(slot.kind == kind && slots.contains(slot)) }
    }
}

/// Fields read from a valid packet build a packet that parses to the same fields, and building
/// is deterministic from there on.
private func checkRoundTrip(_ fields: TCPPacketFields) {
    let built: [UInt8]
    do {
        built = try fields.build()
    } catch {
        fatalError("fields parsed from a valid packet do not build: \(error)")
    }
    require(built.count == fields.totalLength)
    guard let again = try? TCPPacketFields(parsing: built) else {
        fatalError("a built packet does not parse")
    }
    require(again == fields, "parse → build → parse changed the fields")
    require((try? again.build()) == built, "building the same fields twice differs")
    var checked = built
    let valid = checked.withUnsafeMutableBytes { (try? TCPPacket(validating: $0))?.isChecksumValid }
    require(valid == true, "a built packet carries a wrong checksum")

    // A buffer one byte too small is an error, not a write out of bounds.
    var small = [UInt8](repeating: 0, count: built.count - 1)
    let result: Result<Int, WireError> = small.withUnsafeMutableBytes { buffer in
        do throws(WireError) { return .success(try fields.build(into: buffer)) } catch { return .failure(error) }
    }
    guard case .failure(.truncated(layer: .buffer, _, _)) = result else {
        fatalError("building into a short buffer gave \(result)")
    }
}

/// Applies the setters chosen by `setters` (one bit each) to a copy of the datagram whose
/// checksums were made correct first; each must keep them correct, write what it was given,
/// and leave a packet that still validates.
private func checkRewrites(_ datagram: [UInt8], setters: UInt8) {
    var bytes = datagram
    bytes.withUnsafeMutableBytes { buffer in
        guard let packet = try? TCPPacket(validating: buffer) else {
            fatalError("the validated datagram no longer validates on its own")
        }
        packet.updateChecksums()
        require(packet.isChecksumValid, "recomputed checksums are not valid")
        let tcp = packet.tcp
        func valid(_ what: String) {
            require(packet.isChecksumValid, "\(what) broke the checksum")
        }
        if setters & 0x01 != 0 {
            let (source, destination) = (packet.ip.source, packet.ip.destination)
            packet.setSource(destination)
            packet.setDestination(IPv4Address(source.value ^ 0x0101_0101))
            require(packet.ip.source == destination && packet.ip.destination.value == source.value ^ 0x0101_0101)
            valid("an address rewrite")
        }
        if setters & 0x02 != 0 {
            let (source, destination) = (tcp.sourcePort, tcp.destinationPort)
            tcp.setSourcePort(destination)
            tcp.setDestinationPort(source &+ 1)
            let (sequence, acknowledgment) = (tcp.sequenceNumber, tcp.acknowledgmentNumber)
            tcp.setSequenceNumber(acknowledgment)
            tcp.setAcknowledgmentNumber(sequence + 1)
            require(tcp.sourcePort == destination && tcp.destinationPort == source &+ 1)
            require(tcp.sequenceNumber == acknowledgment && tcp.acknowledgmentNumber == sequence + 1)
            valid("a port or sequence rewrite")
        }
        if setters & 0x04 != 0 {
            let window = ~tcp.window
            let urgent = tcp.urgentPointer &+ 7
            let flags = TCPFlags(rawValue: tcp.flags.rawValue ^ setters)
            tcp.setWindow(window)
            tcp.setUrgentPointer(urgent)
            tcp.setFlags(flags)
            require(tcp.window == window && tcp.urgentPointer == urgent && tcp.flags == flags)
            valid("a window, urgent pointer or flags rewrite")
        }
        if setters & 0x08 != 0 {
            let mss = tcp.maximumSegmentSize
            require(tcp.setMaximumSegmentSize(~(mss ?? 0)) == (mss != nil))
            require(tcp.maximumSegmentSize == mss.map { ~$0 })
            let shift = tcp.windowScale
            require(tcp.setWindowScale((shift ?? 0) &+ 3) == (shift != nil))
            require(tcp.windowScale == shift.map { $0 &+ 3 })
            valid("an MSS or window-scale rewrite")
        }
        if setters & 0x10 != 0 {
            let timestamps = tcp.timestamps
            let value = timestamps?.echoReply ?? 0
            let echoReply = (timestamps?.value ?? 0) &+ 1
            require(tcp.setTimestamps(value: value, echoReply: echoReply) == (timestamps != nil))
            if timestamps != nil {
                require(tcp.timestamps?.value == value && tcp.timestamps?.echoReply == echoReply)
            }
            let blocks = tcp.sackBlocks
            tcp.mapSACKBlocks { SACKBlock(left: $0.right + 1, right: $0.left - 1) }
            require(tcp.sackBlocks == blocks.map { SACKBlock(left: $0.right + 1, right: $0.left - 1) })
            valid("a timestamps or SACK rewrite")
        }
        if setters & 0x20 != 0 {
            let kinds: [UInt8] = [
                TCPOption.Kind.sack, TCPOption.Kind.timestamps, TCPOption.Kind.maximumSegmentSize,
                TCPOption.Kind.windowScale,
            ]
            let kind = kinds[Int(tcp.sequenceNumber.rawValue % 4)]
            let headerLength = tcp.headerLength
            let present = tcp.optionSlots.filter { $0.kind == kind }.count
            require(tcp.replaceOptionsWithNoOperations(kind: kind) == present)
            require(tcp.firstSlot(ofKind: kind) == nil && tcp.headerLength == headerLength)
            valid("replacing options with No-Operations")
        }
        if setters & 0x40 != 0 {
            packet.ip.setTimeToLive(packet.ip.timeToLive &+ 1)
            valid("a TTL rewrite")
        }
    }
    let error: WireError? = bytes.withUnsafeMutableBytes { buffer in
        do throws(WireError) {
            _ = try TCPPacket(validating: buffer)
            return nil
        } catch {
            return error
        }
    }
    require(error == nil, "the setters left a packet that does not validate: \(error!)")
}
