import Glibc

/// An Ethernet interface's index and hardware address, read through any socket
/// with `SIOCGIFINDEX` and `SIOCGIFHWADDR`: what a packet socket needs to send
/// frames from it.
struct EthernetInterface {
    let name: String
    let index: Int32
    let hardwareAddress: MACAddress

    /// `ARPHRD_ETHER` from <net/if_arp.h>.
    static let hardwareTypeEthernet: UInt16 = 1

    /// Throws ``LinuxShellError/Code/noSuchDevice`` for a name no interface can have.
    static func checkName(_ name: String, operation: String) throws(LinuxShellError) {
        guard !name.isEmpty, name.utf8.count < Int(IFNAMSIZ), !name.utf8.contains(0) else {
            throw LinuxShellError(
                .noSuchDevice,
                operation: operation,
                detail: "an interface name has 1 to \(Int(IFNAMSIZ) - 1) bytes"
            )
        }
    }

    /// Looks `name` up through `descriptor`. Throws ``LinuxShellError/Code/noSuchDevice`` for an
    /// unknown interface and ``LinuxShellError/Code/unsupportedLinkType`` for a non-Ethernet one.
    static func lookUp(_ name: String, through descriptor: Int32, operation: String, purpose: String)
        throws(LinuxShellError) -> EthernetInterface
    {
        try checkName(name, operation: operation)
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { bytes in
            for (index, byte) in name.utf8.enumerated() { bytes[index] = byte }
        }
        let index: Int32
        do {
            try systemCall("ioctl(SIOCGIFINDEX)") { ioctl(descriptor, UInt(SIOCGIFINDEX), &request) }
            index = request.ifr_ifru.ifru_ivalue
            try systemCall("ioctl(SIOCGIFHWADDR)") { ioctl(descriptor, UInt(SIOCGIFHWADDR), &request) }
        } catch {
            throw .classifying(error, operation: operation)
        }
        let hardwareType = request.ifr_ifru.ifru_hwaddr.sa_family
        guard hardwareType == hardwareTypeEthernet else {
            throw LinuxShellError(
                .unsupportedLinkType,
                operation: operation,
                detail:
                    "link type \(hardwareType) is not Ethernet (ARPHRD_ETHER); \(purpose) needs an Ethernet or veth interface"
            )
        }
        let hardware = withUnsafeBytes(of: request.ifr_ifru.ifru_hwaddr.sa_data) { MACAddress($0, at: 0) }
        return EthernetInterface(name: name, index: index, hardwareAddress: hardware)
    }
}
