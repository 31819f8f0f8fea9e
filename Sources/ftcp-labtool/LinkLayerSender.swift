import ArgumentParser
import FTCPLinux
import Glibc

/// Sends IPv4 packets in Ethernet frames to a hardware address of the caller's choosing, on one
/// interface (a packet socket, `SOCK_DGRAM`: the kernel writes the Ethernet header). The lab
/// uses it to put frames on the segment that are addressed to another host than the one their
/// IPv4 destination lives on, as a hostile host can.
final class LinkLayerSender {
    private let descriptor: Int32
    private var address: [UInt8]

    init(interface: String, destination: MACAddress) throws {
        let index = if_nametoindex(interface)
        guard index > 0 else { throw ValidationError("no interface named \(interface)") }
        let etherTypeIPv4 = UInt16(0x0800)
        descriptor = try systemCall("socket(AF_PACKET, SOCK_DGRAM)") {
            socket(AF_PACKET, SocketType.datagram | SocketType.closeOnExec, Int32(etherTypeIPv4.bigEndian))
        }
        // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
        address = [UInt8](repeating: 0, count: 20)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: etherTypeIPv4.bigEndian, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: Int32(index), toByteOffset: 4, as: Int32.self)
        }
        address[11] = 6
        address.replaceSubrange(12..<18, with: destination.octets)
    }

    deinit { close(descriptor) }

    func send(_ packet: UnsafeRawBufferPointer) throws {
        _ = try systemCall("sendto(AF_PACKET)") {
            address.withUnsafeBytes { raw in
                sendto(
                    descriptor,
                    packet.baseAddress,
                    packet.count,
                    0,
                    raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                    socklen_t(raw.count)
                )
            }
        }
    }
}
