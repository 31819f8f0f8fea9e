import FTCPWire

/// One frame the secondary's capture received, with what the kernel said about it, and the
/// rule that decides whether the secondary may believe it.
///
/// The secondary feeds its own kernel what it captures, and the primary's kernel gets the same
/// frames off the wire. Both kernels must accept or refuse the same segments, or the replicas'
/// states drift apart; so the capture admits only what the primary's kernel will also accept:
/// frames addressed to the primary's hardware address (the service address's), with a valid
/// checksum. The secondary re-computes the checksum of what it injects, so a frame with a bad
/// checksum that it let through would reach its kernel as good while the primary's refused it.
public struct CapturedFrame {
    /// What the kernel knows about the frame's transport checksum (PACKET_AUXDATA's `tp_status`).
    public enum ChecksumStatus: Equatable, Sendable {
        /// Not computed yet (`TP_STATUS_CSUMNOTREADY`): the frame comes from a stack on this host
        /// or over a veth, and the checksum field holds only the pseudo-header's sum. Nothing to
        /// check: no wire has carried it.
        case notComputedYet
        /// The device or the kernel has verified it (`TP_STATUS_CSUM_VALID`).
        case verified
        /// Neither: the capture checks it in software.
        case unknown
    }

    /// Why a frame is not admitted.
    public enum Refusal: Equatable, Sendable {
        /// Addressed to another hardware address than the primary's: the primary's kernel never
        /// sees it (or, flooded by a switch, drops it).
        case notAddressedToPrimary
        /// Its IPv4 header or TCP checksum is wrong: the primary's kernel drops it.
        case badChecksum
    }

    /// The IPv4 packet, link-layer header removed; rewritable in place.
    public let packet: UnsafeMutableRawBufferPointer
    /// The frame's destination hardware address, its first six bytes on Ethernet.
    public let destination: UnsafeRawBufferPointer
    public let checksum: ChecksumStatus

    public init(packet: UnsafeMutableRawBufferPointer, destination: UnsafeRawBufferPointer, checksum: ChecksumStatus) {
        self.packet = packet
        self.destination = destination
        self.checksum = checksum
    }

    /// Whether the secondary may feed its kernel this TCP segment: nil if so, else why not.
    ///
    /// - Parameter primary: the primary's hardware address, from its authenticated heartbeats;
    ///   nil until one has said it (a primary of an earlier release never does), when only the
    ///   checksum is checked.
    public func refusal(of segment: TCPPacket, primary: MACAddress?) -> Refusal? {
        if let primary, !destination.elementsEqual(primary.octets) { return .notAddressedToPrimary }
        // The IPv4 header's checksum is always there (no device computes it for the stack).
        guard segment.ip.isHeaderChecksumValid else { return .badChecksum }
        switch checksum {
        case .notComputedYet, .verified: return nil
        case .unknown:
            return segment.tcp.isChecksumValid(source: segment.ip.source, destination: segment.ip.destination)
                ? nil : .badChecksum
        }
    }
}
