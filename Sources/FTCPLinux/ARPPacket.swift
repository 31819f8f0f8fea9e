import FTCPWire

/// A 48-bit Ethernet hardware address, written `aa:bb:cc:dd:ee:ff`.
///
/// Used for the interface address an ``ARPSocket`` sends from and for the sender of an answer
/// to an ARP probe.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The six bytes in wire order.
    public let octets: [UInt8]

    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    public static let broadcast = MACAddress(unchecked: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    /// The all-zero address, which an ARP request carries as its (unknown) target hardware address.
    public static let zero = MACAddress(unchecked: [0, 0, 0, 0, 0, 0])

    /// Takes exactly six bytes; `nil` for any other count.
    public init?(_ octets: [UInt8]) {
        guard octets.count == 6 else { return nil }
        self.octets = octets
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (six colon-separated hexadecimal bytes, either case); `nil` otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...2).contains(part.count), part.allSatisfy(\.isHexDigit), let byte = UInt8(part, radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        octets = bytes
    }

    private init(unchecked octets: [UInt8]) { self.octets = octets }

    /// Reads six bytes at `offset`; the caller has checked the bounds.
    init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        octets = (0..<6).map { bytes[offset + $0] }
    }

    public var description: String {
        octets.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 0x10 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}

/// Which of the two gratuitous ARP forms to send (RFC 5227 §3, RFC 5944 §4.6).
///
/// Both carry the claimed address as sender and target protocol address and go to the broadcast
/// address. Hosts differ in which form updates their caches, so ``AddressClaim`` sends both.
public enum GratuitousARPForm: Hashable, Sendable, CaseIterable {
    /// An ARP request (operation 1) with target hardware address 0: the RFC 5227 announcement.
    case request
    /// An ARP reply (operation 2) whose target hardware address is the sender's own; Linux treats a
    /// reply as gratuitous only in that shape.
    case reply
}

/// An Ethernet/IPv4 ARP packet (RFC 826), as carried after the Ethernet header: 28 bytes.
///
/// ``init(parsing:)`` reads received bytes without ever trapping: anything shorter than 28 bytes,
/// or not Ethernet/IPv4 ARP, yields `nil` and is skipped. Trailing bytes (Ethernet padding) are ignored.
public struct ARPPacket: Hashable, Sendable {
    /// The ARP operation; values other than request and reply are kept, not rejected.
    public enum Operation: Hashable, Sendable {
        case request
        case reply
        case unknown(UInt16)

        /// The operation code on the wire.
        public var code: UInt16 {
            switch self {
            case .request: 1
            case .reply: 2
            case .unknown(let code): code
            }
        }

        init(code: UInt16) {
            switch code {
            case 1: self = .request
            case 2: self = .reply
            default: self = .unknown(code)
            }
        }
    }

    /// The length of an Ethernet/IPv4 ARP packet.
    public static let length = 28

    public var operation: Operation
    public var senderHardwareAddress: MACAddress
    public var senderProtocolAddress: IPv4Address
    public var targetHardwareAddress: MACAddress
    public var targetProtocolAddress: IPv4Address

    public init(
        operation: Operation,
        senderHardwareAddress: MACAddress,
        senderProtocolAddress: IPv4Address,
        targetHardwareAddress: MACAddress,
        targetProtocolAddress: IPv4Address
    ) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    /// A gratuitous ARP for `address` from `hardwareAddress` in the given form.
    public static func gratuitous(
        address: IPv4Address,
        hardwareAddress: MACAddress,
        form: GratuitousARPForm
    ) -> ARPPacket {
        switch form {
        case .request:
            ARPPacket(
                operation: .request,
                senderHardwareAddress: hardwareAddress,
                senderProtocolAddress: address,
                targetHardwareAddress: .zero,
                targetProtocolAddress: address
            )
        case .reply:
            ARPPacket(
                operation: .reply,
                senderHardwareAddress: hardwareAddress,
                senderProtocolAddress: address,
                targetHardwareAddress: hardwareAddress,
                targetProtocolAddress: address
            )
        }
    }

    /// An RFC 5227 ARP probe for `address`: sender protocol address 0.0.0.0, so no receiver's cache
    /// learns anything from it.
    public static func probe(address: IPv4Address, hardwareAddress: MACAddress) -> ARPPacket {
        ARPPacket(
            operation: .request,
            senderHardwareAddress: hardwareAddress,
            senderProtocolAddress: IPv4Address(0),
            targetHardwareAddress: .zero,
            targetProtocolAddress: address
        )
    }

    /// Parses received bytes; `nil` for anything that is not a whole Ethernet/IPv4 ARP packet
    /// (hardware type 1, protocol type 0x0800, address lengths 6 and 4).
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length else { return nil }
        func uint16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
        func uint32(_ offset: Int) -> UInt32 {
            UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
                | UInt32(bytes[offset + 3])
        }
        guard uint16(0) == 1, uint16(2) == 0x0800, bytes[4] == 6, bytes[5] == 4 else { return nil }
        operation = Operation(code: uint16(6))
        senderHardwareAddress = MACAddress(bytes, at: 8)
        senderProtocolAddress = IPv4Address(uint32(14))
        targetHardwareAddress = MACAddress(bytes, at: 18)
        targetProtocolAddress = IPv4Address(uint32(24))
    }

    /// Parses received bytes held in an array; see ``init(parsing:)-(UnsafeRawBufferPointer)``.
    public init?(parsing bytes: [UInt8]) {
        guard let packet = bytes.withUnsafeBytes({ ARPPacket(parsing: $0) }) else { return nil }
        self = packet
    }

    /// The 28 bytes on the wire.
    public var bytes: [UInt8] {
        var result: [UInt8] = [
            0, 1, 0x08, 0x00, 6, 4, UInt8(operation.code >> 8), UInt8(truncatingIfNeeded: operation.code),
        ]
        result += senderHardwareAddress.octets
        result += senderProtocolAddress.octets
        result += targetHardwareAddress.octets
        result += targetProtocolAddress.octets
        return result
    }

    /// The hardware address that this packet shows to be using `address`, when it is the answer an
    /// RFC 5227 probe for `address` sent from `ownHardwareAddress` waits for; `nil` otherwise.
    ///
    /// An answer is any ARP packet (request or reply) whose sender protocol address is `address`
    /// (a reply or an announcement), or a probe for `address` from another host (sender protocol
    /// address 0.0.0.0, target `address`: both want it). Packets from `ownHardwareAddress` never count.
    public func conflictingHardwareAddress(for address: IPv4Address, ownHardwareAddress: MACAddress) -> MACAddress? {
        if let holder = holderHardwareAddress(for: address, ownHardwareAddress: ownHardwareAddress) { return holder }
        guard senderHardwareAddress != ownHardwareAddress, operation == .request else { return nil }
        if senderProtocolAddress.value == 0, targetProtocolAddress == address { return senderHardwareAddress }
        return nil
    }

    /// The hardware address of another host that holds `address`: one that sends ARP (a reply,
    /// an announcement, a request) from it. A probe for it (sender 0.0.0.0) is not holding it.
    public func holderHardwareAddress(for address: IPv4Address, ownHardwareAddress: MACAddress) -> MACAddress? {
        guard senderHardwareAddress != ownHardwareAddress else { return nil }
        switch operation {
        case .request, .reply: break
        case .unknown: return nil
        }
        return senderProtocolAddress == address ? senderHardwareAddress : nil
    }
}
