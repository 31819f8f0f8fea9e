import FTCPWire

/// Fuzzes ARP parsing (`ARPPacket`, `MACAddress`, Sources/FTCPLinux/ARPPacket.swift, compiled
/// into this target on its own) and the address text parsers: any bytes received on the ARP
/// socket either parse into a packet that writes back as the same 28 bytes, or are skipped; the
/// answers to a probe never name the prober itself; a MAC or IPv4 address parsed from text
/// prints as text that parses to the same address.
///
/// Input: the received bytes; the first six and the next four also serve as the prober's own
/// hardware address and the probed address, and the whole input as text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzARPPacket(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bytes = input.bytes
    let own = MACAddress(Array((input.bytes(6) + [UInt8](repeating: 0, count: 6)).prefix(6))) ?? .zero
    let probed = IPv4Address(input.uint32())

    let parsed = ARPPacket(parsing: bytes)
    require(parsed == bytes.withUnsafeBytes { ARPPacket(parsing: $0) }, "the two parsers disagree")
    if let packet = parsed {
        require(bytes.count >= ARPPacket.length)
        require(packet.bytes == Array(bytes.prefix(ARPPacket.length)), "a parsed packet writes other bytes")
        require(ARPPacket(parsing: packet.bytes) == packet)
        let code = UInt16(bytes[6]) << 8 | UInt16(bytes[7])
        require(packet.operation.code == code && (packet.operation == .request) == (code == 1))
        require((packet.operation == .reply) == (code == 2))
        checkAnswers(packet, address: probed, own: own)
        checkAnswers(packet, address: packet.senderProtocolAddress, own: own)
        checkAnswers(packet, address: packet.targetProtocolAddress, own: packet.senderHardwareAddress)
    } else {
        let isARP = bytes.count >= 28 && bytes[0..<6].elementsEqual([0, 1, 8, 0, 6, 4])
        require(!isARP, "an Ethernet/IPv4 ARP packet was skipped")
    }

    for form in GratuitousARPForm.allCases {
        let gratuitous = ARPPacket.gratuitous(address: probed, hardwareAddress: own, form: form)
        require(ARPPacket(parsing: gratuitous.bytes) == gratuitous)
    }
    let probe = ARPPacket.probe(address: probed, hardwareAddress: own)
    require(ARPPacket(parsing: probe.bytes) == probe)

    let text = String(decoding: bytes, as: UTF8.self)
    if let mac = MACAddress(text) {
        require(MACAddress(mac.description) == mac && mac.octets.count == 6)
        require(mac.description.count == 17, "a MAC address prints as \(mac.description)")
    }
    if let address = IPv4Address(text) {
        require(IPv4Address(address.description) == address && address.octets.count == 4)
    }
    return 0
}

/// The hardware address that holds or also wants `address` is another host's, never `own`; a
/// holder is always a conflict.
private func checkAnswers(_ packet: ARPPacket, address: IPv4Address, own: MACAddress) {
    let holder = packet.holderHardwareAddress(for: address, ownHardwareAddress: own)
    let conflict = packet.conflictingHardwareAddress(for: address, ownHardwareAddress: own)
    require(holder != own && conflict != own, "our own ARP counted as another host's")
    if let holder { require(conflict == holder && holder == packet.senderHardwareAddress) }
    if conflict != nil { require(packet.operation == .request || packet.operation == .reply) }
}
