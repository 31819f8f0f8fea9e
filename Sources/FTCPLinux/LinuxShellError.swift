import Glibc

/// Why a packet-I/O operation of the Linux shell failed (packet capture, raw IPv4 socket, UDP
/// socket, poller), with advice a person can act on.
///
/// `code` says what kind of failure it was; `operation` names the step and its object ("open
/// capture on veth0", "send raw packet to 10.97.0.2"); `detail` carries libpcap's own text when
/// there is one; `systemCallError` the failed system call. ``Code`` is a struct of static values,
/// so adding a code breaks no caller.
public struct LinuxShellError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A system call failed for a reason without a more specific code (see ``LinuxShellError/systemCallError``).
        public static let systemCall = Code("systemCall")
        /// The caller lacks a privilege (root, CAP_NET_RAW or CAP_NET_ADMIN), or a firewall rule refused a packet.
        public static let permissionDenied = Code("permissionDenied")
        /// The named network interface does not exist (in this network namespace).
        public static let noSuchDevice = Code("noSuchDevice")
        /// The network interface exists but is down.
        public static let interfaceDown = Code("interfaceDown")
        /// libpcap reported an error not covered by another code (see ``LinuxShellError/detail``).
        public static let captureFailed = Code("captureFailed")
        /// The capture filter expression did not compile or could not be installed.
        public static let invalidFilter = Code("invalidFilter")
        /// The interface's link-layer type is not one the capture can strip.
        public static let unsupportedLinkType = Code("unsupportedLinkType")
        /// A packet is larger than the outgoing interface's MTU (EMSGSIZE).
        public static let packetTooLarge = Code("packetTooLarge")
        /// The kernel had no buffer space for the packet (ENOBUFS).
        public static let noBufferSpace = Code("noBufferSpace")
        /// A nonblocking socket could not take the packet now (EAGAIN).
        public static let wouldBlock = Code("wouldBlock")
        /// The bytes handed to a send are not an IPv4 packet.
        public static let malformedPacket = Code("malformedPacket")
        /// A received datagram was larger than the buffer given to hold it.
        public static let datagramTruncated = Code("datagramTruncated")
        /// Another socket is bound to the address and port (EADDRINUSE).
        public static let addressInUse = Code("addressInUse")
        /// The address is not assigned to any interface of this network namespace (EADDRNOTAVAIL).
        public static let addressNotAvailable = Code("addressNotAvailable")
        /// A descriptor registered with a ``Poller`` is not open (POLLNVAL).
        public static let invalidDescriptor = Code("invalidDescriptor")
        /// The object was already closed.
        public static let closed = Code("closed")
    }

    /// The kind of failure.
    public let code: Code
    /// The step that failed and what it was applied to, e.g. `"open capture on veth0"`.
    public let operation: String
    /// Further text from the library that failed (libpcap's error message), if any.
    public let detail: String?
    /// The failing system call, if the failure came from one.
    public let systemCallError: SystemCallError?

    public init(_ code: Code, operation: String, detail: String? = nil, systemCallError: SystemCallError? = nil) {
        self.code = code
        self.operation = operation
        self.detail = detail
        self.systemCallError = systemCallError
    }

    /// Classifies a failed system call by its errno, so common causes get their own code.
    static func classifying(_ error: SystemCallError, operation: String) -> LinuxShellError {
        let code: Code
        switch error.errno {
        case EPERM, EACCES: code = .permissionDenied
        case EMSGSIZE: code = .packetTooLarge
        case ENOBUFS: code = .noBufferSpace
        case EAGAIN: code = .wouldBlock
        case EADDRINUSE: code = .addressInUse
        case EADDRNOTAVAIL: code = .addressNotAvailable
        case ENODEV, ENXIO: code = .noSuchDevice
        case ENETDOWN: code = .interfaceDown
        default: code = .systemCall
        }
        return LinuxShellError(code, operation: operation, systemCallError: error)
    }

    /// What a person should check or do about this failure.
    public var advice: String {
        switch code {
        case .permissionDenied:
            if let call = systemCallError?.call, call.hasPrefix("send") {
                return "a firewall rule (iptables/nftables OUTPUT) rejected the packet, or the process "
                    + "lacks CAP_NET_RAW; check `nft list ruleset` and run as root"
            }
            return "are you root? raw sockets and packet capture need CAP_NET_RAW, SO_MARK and the "
                + "*FORCE buffer options need CAP_NET_ADMIN"
        case .noSuchDevice:
            return "is the interface name right, are you in the right network namespace? "
                + "(`ip -brief link` lists this namespace's interfaces)"
        case .interfaceDown:
            return "bring the interface up: `ip link set dev <name> up`"
        case .invalidFilter:
            return "fix the filter expression (pcap-filter(7) syntax; try it with `tcpdump -d '<filter>'`)"
        case .unsupportedLinkType:
            return "capture on an Ethernet (or veth) interface, or on \"any\""
        case .packetTooLarge:
            return "the packet is larger than the path MTU: segment at the negotiated MSS before sending "
                + "(captured GRO super-frames must be split)"
        case .noBufferSpace:
            return "the interface queue or socket send buffer is full: send more slowly, enlarge the send "
                + "buffer, or raise the interface's txqueuelen"
        case .wouldBlock:
            return "the socket is nonblocking and its buffer is full: wait until it is writable and retry"
        case .malformedPacket:
            return "hand over a whole IPv4 packet, starting at its header (version 4, IHL >= 5)"
        case .datagramTruncated:
            return "receive into a larger buffer (UDP datagrams can be up to 65,507 bytes)"
        case .addressInUse:
            return "another process holds that address and port: stop it or choose another port"
        case .addressNotAvailable:
            return "the address is not assigned here: check `ip -brief addr` in this network namespace"
        case .invalidDescriptor:
            return "a descriptor was closed while registered: unregister descriptors before closing them"
        case .closed:
            return "it was closed; open a new one"
        case .captureFailed:
            return "see libpcap's message"
        default:
            return "see the system call error"
        }
    }

    public var description: String {
        var text = "\(operation) failed"
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        if let systemCallError { text += ": \(systemCallError)" }
        return text + "; " + advice
    }
}
