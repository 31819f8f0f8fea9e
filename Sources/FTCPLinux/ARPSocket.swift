import FTCPWire
import Glibc

/// A packet socket (`AF_PACKET`, `SOCK_DGRAM`, `ETH_P_ARP`) bound to one Ethernet interface, which
/// sends and receives ARP packets: how a secondary that takes over the primary's address tells
/// the segment (gratuitous ARP) and checks that nobody else holds it (RFC 5227 probe).
///
/// The kernel builds the Ethernet header: the socket hands it only the 28-byte ARP packet and
/// the destination hardware address. The socket is nonblocking; ``probe(address:timeoutMilliseconds:)``
/// waits with `poll`. Not thread-safe: use one instance from one thread. Needs CAP_NET_RAW.
/// A socket stays in the network namespace it was opened in.
public final class ARPSocket {
    /// The socket's file descriptor, -1 once closed (poll it for readability to drive ``receive()``).
    public private(set) var fileDescriptor: Int32
    /// The interface the socket is bound to, e.g. `"eth0"`.
    public let interface: String
    /// The interface's index (`SIOCGIFINDEX`).
    public let interfaceIndex: Int32
    /// The interface's own hardware address (`SIOCGIFHWADDR`): every packet is sent from it.
    public let hardwareAddress: MACAddress

    /// `ETH_P_ARP` from <linux/if_ether.h>.
    static let etherTypeARP: UInt16 = 0x0806
    /// `PACKET_OUTGOING` from <linux/if_packet.h>: a copy of a frame this host sent.
    private static let packetOutgoing: UInt8 = 4
    /// `sizeof(struct sockaddr_ll)`.
    private static let linkAddressLength = 20

    /// Opens the socket on `interface` and reads the interface's index and hardware address.
    ///
    /// Throws ``LinuxShellError/Code/noSuchDevice`` for an unknown interface,
    /// ``LinuxShellError/Code/unsupportedLinkType`` for a non-Ethernet one, and
    /// ``LinuxShellError/Code/permissionDenied`` without CAP_NET_RAW.
    public init(interface: String) throws(LinuxShellError) {
        let operation = "open ARP socket on \(interface)"
        try EthernetInterface.checkName(interface, operation: operation)
        let type = SocketType.datagram | SocketType.closeOnExec | SocketType.nonblocking
        let descriptor: Int32
        do {
            descriptor = try systemCall("socket(AF_PACKET, SOCK_DGRAM, ETH_P_ARP)") {
                socket(AF_PACKET, Int32(type), Int32(Self.etherTypeARP.bigEndian))
            }
        } catch {
            throw .classifying(error, operation: operation)
        }
        let found: EthernetInterface
        do {
            found = try EthernetInterface.lookUp(interface, through: descriptor, operation: operation, purpose: "ARP")
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        let index = found.index
        var link = Self.linkAddress(interfaceIndex: index, destination: nil)
        do {
            try systemCall("bind(AF_PACKET, \(interface))") {
                link.withUnsafeMutableBytes { raw in
                    bind(
                        descriptor,
                        raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                        socklen_t(Self.linkAddressLength)
                    )
                }
            }
        } catch {
            Glibc.close(descriptor)
            throw .classifying(error, operation: operation)
        }
        fileDescriptor = descriptor
        self.interface = interface
        interfaceIndex = index
        hardwareAddress = found.hardwareAddress
    }

    deinit { close() }

    /// Closes the socket; closing again does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// A `struct sockaddr_ll` as bytes: family, protocol `ETH_P_ARP`, the interface, and when
    /// given the destination hardware address.
    private static func linkAddress(interfaceIndex: Int32, destination: MACAddress?) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: linkAddressLength)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: etherTypeARP.bigEndian, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: interfaceIndex, toByteOffset: 4, as: Int32.self)
            raw.storeBytes(of: EthernetInterface.hardwareTypeEthernet, toByteOffset: 8, as: UInt16.self)
        }
        if let destination {
            bytes[11] = 6
            bytes.replaceSubrange(12..<18, with: destination.octets)
        }
        return bytes
    }

    /// Sends one ARP packet to `destination` (broadcast unless told otherwise).
    ///
    /// Throws ``LinuxShellError/Code/interfaceDown`` when the interface is down,
    /// ``LinuxShellError/Code/permissionDenied`` when a firewall (arptables/nftables arp) refused it.
    public func send(_ packet: ARPPacket, to destination: MACAddress = .broadcast) throws(LinuxShellError) {
        let operation =
            "send ARP \(packet.operation == .reply ? "reply" : "request") for "
            + "\(packet.targetProtocolAddress) on \(interface)"
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: operation) }
        let descriptor = fileDescriptor
        let payload = packet.bytes
        var link = Self.linkAddress(interfaceIndex: interfaceIndex, destination: destination)
        let sent: Int
        do {
            sent = try systemCall("sendto(AF_PACKET, \(interface))") {
                link.withUnsafeMutableBytes { raw in
                    payload.withUnsafeBytes { body in
                        sendto(
                            descriptor,
                            body.baseAddress,
                            body.count,
                            0,
                            raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                            socklen_t(Self.linkAddressLength)
                        )
                    }
                }
            }
        } catch {
            throw .classifying(error, operation: operation)
        }
        if sent != payload.count {
            throw LinuxShellError(
                .systemCall,
                operation: operation,
                detail: "the kernel took \(sent) of \(payload.count) bytes"
            )
        }
    }

    /// Sends a gratuitous ARP for `address` from this interface, to the broadcast address.
    public func sendGratuitous(address: IPv4Address, form: GratuitousARPForm) throws(LinuxShellError) {
        try send(.gratuitous(address: address, hardwareAddress: hardwareAddress, form: form))
    }

    /// Sends one announcement of `address`: a gratuitous request, then a gratuitous reply.
    public func announce(address: IPv4Address) throws(LinuxShellError) {
        for form in GratuitousARPForm.allCases {
            try sendGratuitous(address: address, form: form)
        }
    }

    /// One ARP packet this socket received.
    public struct Received: Hashable, Sendable {
        /// The parsed packet.
        public var packet: ARPPacket
        /// The Ethernet source address of the frame that carried it.
        public var linkSource: MACAddress
    }

    /// Receives the next ARP packet waiting on the socket, or `nil` when none is waiting.
    ///
    /// Frames this host sent itself and frames that are not well-formed Ethernet/IPv4 ARP are
    /// skipped (read and dropped), never trapped on.
    public func receive() throws(LinuxShellError) -> Received? {
        let operation = "receive ARP on \(interface)"
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: operation) }
        let descriptor = fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 2048)
        var link = [UInt8](repeating: 0, count: Self.linkAddressLength)
        while true {
            var linkLength = socklen_t(Self.linkAddressLength)
            let count: Int
            do {
                count = try systemCall("recvfrom(AF_PACKET, \(interface))") {
                    buffer.withUnsafeMutableBytes { body in
                        link.withUnsafeMutableBytes { raw in
                            recvfrom(
                                descriptor,
                                body.baseAddress,
                                body.count,
                                0,
                                raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                                &linkLength
                            )
                        }
                    }
                }
            } catch {
                if error.errno == EAGAIN || error.errno == EWOULDBLOCK { return nil }
                throw .classifying(error, operation: operation)
            }
            if linkLength >= 18, link[10] == Self.packetOutgoing { continue }
            let parsed = buffer.withUnsafeBytes { body in
                ARPPacket(parsing: UnsafeRawBufferPointer(rebasing: body[0..<min(count, body.count)]))
            }
            guard let packet = parsed else { continue }
            let source =
                (linkLength >= 18 && link[11] == 6)
                ? link.withUnsafeBytes { MACAddress($0, at: 12) } : packet.senderHardwareAddress
            return Received(packet: packet, linkSource: source)
        }
    }

    /// Sends an RFC 5227 ARP probe for `address` without waiting for an answer: read answers
    /// with ``receiveConflict(for:)`` when the socket is readable.
    public func sendProbe(address: IPv4Address) throws(LinuxShellError) {
        try send(.probe(address: address, hardwareAddress: hardwareAddress))
    }

    /// Reads every ARP packet waiting and returns the hardware address of the first host that
    /// uses `address` (a reply, an announcement or a request from it) or probes for it, if any.
    public func receiveConflict(for address: IPv4Address) throws(LinuxShellError) -> MACAddress? {
        try receiveAll { $0.conflictingHardwareAddress(for: address, ownHardwareAddress: hardwareAddress) }
    }

    /// Reads every ARP packet waiting; returns the first non-nil `match`.
    private func receiveAll(_ match: (ARPPacket) -> MACAddress?) throws(LinuxShellError) -> MACAddress? {
        var found: MACAddress?
        while let received = try receive() {
            if found == nil { found = match(received.packet) }
        }
        return found
    }

    /// Reads every ARP packet waiting and returns the hardware address of the first other host
    /// that sends ARP from `address` (it holds it), if any; probes for it do not count.
    public func receiveHolder(of address: IPv4Address) throws(LinuxShellError) -> MACAddress? {
        try receiveAll { $0.holderHardwareAddress(for: address, ownHardwareAddress: hardwareAddress) }
    }

    /// Sends an RFC 5227 ARP probe for `address` and waits up to `timeoutMilliseconds` for an answer.
    ///
    /// - Returns: the hardware address of a host that uses `address` (its reply or announcement)
    ///   or wants it too (its own probe), or `nil` when no answer came in time: the address is free
    ///   as far as this segment can tell. Packets already waiting before the probe are discarded.
    ///   With `holdersOnly`, another host's probe does not count (two nodes starting together
    ///   probe at the same moment, and neither holds the address).
    public func probe(address: IPv4Address, timeoutMilliseconds: Int, holdersOnly: Bool = false) throws(LinuxShellError)
        -> MACAddress?
    {
        while try receive() != nil {}
        try send(.probe(address: address, hardwareAddress: hardwareAddress))
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(max(0, timeoutMilliseconds)))
        while true {
            while let received = try receive() {
                let owner =
                    holdersOnly
                    ? received.packet.holderHardwareAddress(for: address, ownHardwareAddress: hardwareAddress)
                    : received.packet.conflictingHardwareAddress(for: address, ownHardwareAddress: hardwareAddress)
                if let owner {
                    return owner
                }
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return nil }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            var entry = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            do {
                try systemCall("poll(AF_PACKET, \(interface))") { poll(&entry, 1, milliseconds) }
            } catch {
                throw .classifying(
                    error,
                    operation: "wait for an answer to the ARP probe for \(address) on \(interface)"
                )
            }
        }
    }
}
