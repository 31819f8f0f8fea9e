import CPcap
import Glibc

/// A libpcap live capture that hands over IPv4 packets with their link-layer header removed:
/// how the secondary bridge sees the client's traffic to the primary.
///
/// The capture runs in immediate mode (each packet is delivered as soon as it arrives),
/// nonblocking, with a kernel filter. Poll ``fileDescriptor`` for readability, then call
/// ``dispatch(maxPackets:_:)``.
///
/// Each packet is copied into one scratch buffer the capture owns, so the caller may rewrite it
/// in place; the buffer is valid only during the call of the closure. Frames on a veth or with
/// GRO can be super-frames of up to 64 KiB: the snapshot length must cover them. A frame
/// captured shorter than it was (`caplen < len`) is counted in ``Statistics/truncated`` and
/// never handed over; frames that do not carry IPv4 are counted in ``Statistics/nonIPv4``.
///
/// Link-layer types: Ethernet (`DLT_EN10MB`, with at most one 802.1Q/802.1ad tag), Linux cooked
/// capture v1 and v2 (`DLT_LINUX_SLL`, `DLT_LINUX_SLL2`, as on the "any" device) and raw IP
/// (`DLT_RAW`). Not thread-safe: use one instance from one thread. Needs CAP_NET_RAW.
public final class PacketCapture {
    /// What the kernel and the capture counted since it was opened.
    public struct Statistics: Hashable, Sendable {
        /// Packets the kernel's filter passed to the capture (`ps_recv`).
        public var received: UInt64
        /// Packets dropped because the capture buffer was full (`ps_drop`).
        public var dropped: UInt64
        /// Packets the interface or its driver dropped (`ps_ifdrop`).
        public var interfaceDropped: UInt64
        /// Frames captured shorter than they were (snapshot length too small); skipped.
        public var truncated: UInt64
        /// Frames that did not carry IPv4 (ARP, IPv6, …); skipped.
        public var nonIPv4: UInt64
        /// Frames too short for their link-layer or IPv4 header, or whose IPv4 total length
        /// exceeds the bytes captured; skipped.
        public var malformed: UInt64
        /// IPv4 packets handed to a `dispatch` closure.
        public var delivered: UInt64
    }

    /// The interface captured on.
    public let interface: String
    /// The filter expression installed.
    public let filter: String
    /// The warning `pcap_activate` gave, if any (for example that promiscuous mode is not supported).
    public let activationWarning: String?
    /// The link-layer type (`DLT_*`) of the interface.
    public let linkType: Int32
    /// A descriptor that becomes readable when packets are waiting; -1 once closed.
    public private(set) var fileDescriptor: Int32

    private var handle: OpaquePointer?
    private let scratch: UnsafeMutableRawBufferPointer
    private var counters = Statistics(
        received: 0,
        dropped: 0,
        interfaceDropped: 0,
        truncated: 0,
        nonIPv4: 0,
        malformed: 0,
        delivered: 0
    )
    /// The closure of the `dispatch` in progress; set only while libpcap calls back.
    private var deliver: ((UnsafeMutableRawBufferPointer) -> Void)?
    private var deliveredInDispatch = 0

    /// Opens and activates a capture.
    ///
    /// - Parameters:
    ///   - interface: the interface name, or "any" for all of this network namespace's interfaces.
    ///   - filter: a pcap-filter(7) expression, e.g. `"tcp and dst host 10.97.0.2 and dst port 9999"`.
    ///   - promiscuous: capture frames addressed to other hosts too.
    ///   - bufferBytes: the kernel capture buffer size.
    ///   - snapshotLength: the most bytes captured per frame; must cover 64 KiB super-frames
    ///     plus the link-layer header.
    public init(
        interface: String,
        filter: String,
        promiscuous: Bool = true,
        bufferBytes: Int = 64 << 20,
        snapshotLength: Int32 = 262_144
    ) throws(LinuxShellError) {
        let operation = "open capture on \(interface)"
        var errorText = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_create(interface, &errorText) else {
            throw LinuxShellError(.captureFailed, operation: operation, detail: Self.text(errorText))
        }
        // Until activation succeeds, the handle is closed on every way out.
        var activated = false
        defer { if !activated { pcap_close(handle) } }

        func check(_ status: Int32, _ step: String) throws(LinuxShellError) {
            guard status != 0 else { return }
            throw LinuxShellError(
                .captureFailed,
                operation: "\(operation): \(step)",
                detail: String(cString: pcap_statustostr(status))
            )
        }
        try check(pcap_set_promisc(handle, promiscuous ? 1 : 0), "pcap_set_promisc")
        try check(pcap_set_buffer_size(handle, Int32(clamping: bufferBytes)), "pcap_set_buffer_size")
        try check(pcap_set_snaplen(handle, snapshotLength), "pcap_set_snaplen")
        try check(pcap_set_immediate_mode(handle, 1), "pcap_set_immediate_mode")

        let status = pcap_activate(handle)
        if status < 0 {
            let code: LinuxShellError.Code
            switch status {
            case PCAP_ERROR_NO_SUCH_DEVICE: code = .noSuchDevice
            case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED: code = .permissionDenied
            case PCAP_ERROR_IFACE_NOT_UP: code = .interfaceDown
            default: code = .captureFailed
            }
            throw LinuxShellError(code, operation: operation, detail: Self.describe(status: status, handle: handle))
        }
        activationWarning = status > 0 ? Self.describe(status: status, handle: handle) : nil

        linkType = pcap_datalink(handle)
        switch linkType {
        case DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW: break
        default:
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "unknown"
            throw LinuxShellError(
                .unsupportedLinkType,
                operation: operation,
                detail: "link-layer type \(linkType) (\(name))"
            )
        }

        var program = bpf_program()
        guard pcap_compile(handle, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw LinuxShellError(
                .invalidFilter,
                operation: "\(operation): compile filter \"\(filter)\"",
                detail: String(cString: pcap_geterr(handle))
            )
        }
        let installed = pcap_setfilter(handle, &program)
        pcap_freecode(&program)
        guard installed == 0 else {
            throw LinuxShellError(
                .invalidFilter,
                operation: "\(operation): install filter \"\(filter)\"",
                detail: String(cString: pcap_geterr(handle))
            )
        }
        guard pcap_setnonblock(handle, 1, &errorText) == 0 else {
            throw LinuxShellError(
                .captureFailed,
                operation: "\(operation): pcap_setnonblock",
                detail: Self.text(errorText)
            )
        }
        let selectable = pcap_get_selectable_fd(handle)
        guard selectable >= 0 else {
            throw LinuxShellError(
                .captureFailed,
                operation: "\(operation): pcap_get_selectable_fd",
                detail: "the capture has no descriptor to poll"
            )
        }

        activated = true
        self.handle = handle
        self.interface = interface
        self.filter = filter
        fileDescriptor = selectable
        scratch = .allocate(byteCount: Int(max(snapshotLength, 65_536)), alignment: 16)
    }

    deinit {
        close()
        scratch.deallocate()
    }

    /// Closes the capture; closing again does nothing.
    public func close() {
        guard let handle else { return }
        pcap_close(handle)
        self.handle = nil
        fileDescriptor = -1
    }

    /// Hands each waiting IPv4 packet to `body`, without its link-layer header, in a mutable
    /// buffer that is valid only during the call.
    ///
    /// - Parameter maxPackets: the most frames to process; 0 or less processes one buffer-full.
    /// - Returns: how many packets were handed to `body` (0 when nothing was waiting).
    public func dispatch(maxPackets: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) throws(LinuxShellError)
        -> Int
    {
        guard let handle else { throw LinuxShellError(.closed, operation: "capture on \(interface)") }
        let context = Unmanaged.passUnretained(self).toOpaque().assumingMemoryBound(to: UInt8.self)
        let count = Int32(clamping: maxPackets <= 0 ? -1 : maxPackets)
        let status = withoutActuallyEscaping(body) { escapable in
            deliver = escapable
            deliveredInDispatch = 0
            defer { deliver = nil }
            return pcap_dispatch(handle, count, packetCallback, context)
        }
        if status == PCAP_ERROR {
            throw LinuxShellError(
                .captureFailed,
                operation: "capture on \(interface)",
                detail: String(cString: pcap_geterr(handle))
            )
        }
        return deliveredInDispatch
    }

    /// The kernel's counters (`pcap_stats`) together with the capture's own.
    public var statistics: Statistics {
        get throws(LinuxShellError) {
            guard let handle else { throw LinuxShellError(.closed, operation: "capture statistics on \(interface)") }
            var kernel = pcap_stat()
            guard pcap_stats(handle, &kernel) == 0 else {
                throw LinuxShellError(
                    .captureFailed,
                    operation: "capture statistics on \(interface)",
                    detail: String(cString: pcap_geterr(handle))
                )
            }
            var result = counters
            result.received = UInt64(kernel.ps_recv)
            result.dropped = UInt64(kernel.ps_drop)
            result.interfaceDropped = UInt64(kernel.ps_ifdrop)
            return result
        }
    }

    /// Strips the link-layer header from one captured frame and hands the IPv4 packet on.
    fileprivate func handleFrame(_ header: UnsafePointer<pcap_pkthdr>, _ bytes: UnsafePointer<UInt8>) {
        let captured = Int(header.pointee.caplen)
        guard captured == Int(header.pointee.len) else {
            counters.truncated += 1
            return
        }
        let frame = UnsafeRawBufferPointer(start: bytes, count: captured)
        let offset: Int
        switch linkType {
        case DLT_EN10MB:
            guard captured >= 14 else { counters.malformed += 1; return }
            var etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
            var headerLength = 14
            if etherType == 0x8100 || etherType == 0x88a8 {
                guard captured >= 18 else { counters.malformed += 1; return }
                etherType = UInt16(frame[16]) << 8 | UInt16(frame[17])
                headerLength = 18
            }
            guard etherType == 0x0800 else { counters.nonIPv4 += 1; return }
            offset = headerLength
        case DLT_LINUX_SLL:
            guard captured >= 16 else { counters.malformed += 1; return }
            guard frame[14] == 0x08, frame[15] == 0x00 else { counters.nonIPv4 += 1; return }
            offset = 16
        case DLT_LINUX_SLL2:
            guard captured >= 20 else { counters.malformed += 1; return }
            guard frame[0] == 0x08, frame[1] == 0x00 else { counters.nonIPv4 += 1; return }
            offset = 20
        default:  // DLT_RAW: the frame is the IP packet.
            guard captured >= 1 else { counters.malformed += 1; return }
            guard frame[0] >> 4 == 4 else { counters.nonIPv4 += 1; return }
            offset = 0
        }
        let available = captured - offset
        guard available >= 20, frame[offset] >> 4 == 4 else { counters.malformed += 1; return }
        // Ethernet pads short frames to 60 bytes: the IPv4 total length says where the packet ends.
        // A total length of 0 marks a GSO packet larger than 64 KiB ("BIG TCP"): keep all bytes.
        var length = Int(frame[offset + 2]) << 8 | Int(frame[offset + 3])
        if length == 0 { length = available }
        guard length >= 20, length <= available else { counters.malformed += 1; return }
        guard length <= scratch.count else { counters.truncated += 1; return }
        scratch.baseAddress!.copyMemory(from: bytes + offset, byteCount: length)
        counters.delivered += 1
        deliveredInDispatch += 1
        deliver?(UnsafeMutableRawBufferPointer(rebasing: scratch[0..<length]))
    }

    /// The NUL-terminated text libpcap wrote into an error buffer.
    private static func text(_ buffer: [CChar]) -> String {
        let end = buffer.firstIndex(of: 0) ?? buffer.endIndex
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func describe(status: Int32, handle: OpaquePointer) -> String {
        let summary = String(cString: pcap_statustostr(status))
        let message = String(cString: pcap_geterr(handle))
        return message.isEmpty || message == summary ? summary : "\(summary): \(message)"
    }
}

/// libpcap's per-packet callback: a C function with no captures; the capture arrives as the
/// unretained `user` pointer `dispatch` passed.
private let packetCallback: pcap_handler = { user, header, bytes in
    guard let user, let header, let bytes else { return }
    let capture = Unmanaged<PacketCapture>.fromOpaque(UnsafeRawPointer(user)).takeUnretainedValue()
    capture.handleFrame(header, bytes)
}
