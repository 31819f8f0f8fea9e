import CPacketSocket
import CPcap
import Glibc

/// A live capture on one Ethernet interface that hands over IPv4 packets with their link-layer
/// header removed, with the frame's destination hardware address and what the kernel knows of
/// its checksum: how the secondary bridge sees the client's traffic to the primary.
///
/// A raw packet socket (`AF_PACKET`) with PACKET_AUXDATA, in promiscuous mode, with a classic
/// BPF filter compiled by libpcap from a pcap-filter(7) expression and attached before the
/// socket is bound. libpcap's own capture is not used because it does not pass on the kernel's
/// checksum status (`tp_status`), which the secondary needs to refuse frames the primary's
/// kernel will drop (see ``CapturedFrame``). Frames are received in batches (`recvmmsg`) into
/// buffers the capture owns, which the caller may rewrite in place during the call of the
/// closure. Frames on a veth or with GRO can be super-frames of up to 64 KiB: the frame size
/// must cover them; a longer frame is counted in ``Statistics/truncated`` and never handed
/// over. Frames that do not carry IPv4 are counted in ``Statistics/nonIPv4``, frames this host
/// sent in ``Statistics/outgoing``. Not thread-safe: use one instance from one thread. Needs
/// CAP_NET_RAW.
public final class PacketCapture {
    /// What the kernel and the capture counted since it was opened.
    public struct Statistics: Hashable, Sendable {
        /// Frames the kernel's filter passed to the capture, dropped ones included.
        public var received: UInt64
        /// Frames dropped because the socket's receive buffer was full.
        public var dropped: UInt64
        /// Always 0: a packet socket has no such counter (kept for the status's key).
        public var interfaceDropped: UInt64
        /// Frames longer than a receive buffer; skipped.
        public var truncated: UInt64
        /// Frames that did not carry IPv4 (ARP, IPv6, …); skipped.
        public var nonIPv4: UInt64
        /// Frames too short for their link-layer or IPv4 header, or whose IPv4 total length
        /// exceeds the bytes captured; skipped.
        public var malformed: UInt64
        /// Frames this host sent itself; skipped.
        public var outgoing: UInt64
        /// IPv4 packets handed to a `dispatch` closure.
        public var delivered: UInt64
    }

    /// The interface captured on.
    public let interface: String
    /// The filter expression installed.
    public let filter: String
    /// A descriptor that becomes readable when frames are waiting; -1 once closed.
    public private(set) var fileDescriptor: Int32

    private let frameBytes: Int
    private let batch: Int
    private let buffers: UnsafeMutableRawBufferPointer
    private var info: [ftcp_frame_info]
    private var counters = Statistics(
        received: 0,
        dropped: 0,
        interfaceDropped: 0,
        truncated: 0,
        nonIPv4: 0,
        malformed: 0,
        outgoing: 0,
        delivered: 0
    )

    /// Opens a capture.
    ///
    /// - Parameters:
    ///   - interface: the Ethernet interface's name.
    ///   - filter: a pcap-filter(7) expression, e.g. `"tcp and dst host 10.97.0.2 and dst port 9999"`.
    ///   - promiscuous: capture frames addressed to other hosts too.
    ///   - bufferBytes: the socket's receive buffer.
    ///   - frameBytes: the largest frame taken whole, link-layer header included; must cover
    ///     64 KiB super-frames.
    ///   - batch: frames received per system call (at most 64).
    public init(
        interface: String,
        filter: String,
        promiscuous: Bool = true,
        bufferBytes: Int = 64 << 20,
        frameBytes: Int = 65_536 + 128,
        batch: Int = 32
    ) throws(LinuxShellError) {
        let operation = "open capture on \(interface)"
        try EthernetInterface.checkName(interface, operation: operation)
        let index = if_nametoindex(interface)
        guard index > 0 else {
            throw LinuxShellError(.noSuchDevice, operation: operation, detail: "no interface named \(interface)")
        }
        // libpcap compiles the expression for Ethernet frames; the kernel runs the program.
        guard let compiler = pcap_open_dead(DLT_EN10MB, Int32(clamping: frameBytes)) else {
            throw LinuxShellError(.captureFailed, operation: operation, detail: "pcap_open_dead failed")
        }
        defer { pcap_close(compiler) }
        var program = bpf_program()
        guard pcap_compile(compiler, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw LinuxShellError(
                .invalidFilter,
                operation: "\(operation): compile filter \"\(filter)\"",
                detail: String(cString: pcap_geterr(compiler))
            )
        }
        defer { pcap_freecode(&program) }
        var failedStep: UnsafePointer<CChar>?
        let descriptor = ftcp_packet_socket_open(
            Int32(index),
            program.bf_insns,
            program.bf_len,
            Int32(clamping: bufferBytes),
            promiscuous ? 1 : 0,
            &failedStep
        )
        guard descriptor >= 0 else {
            let code = errno
            let step = failedStep.map { String(cString: $0) } ?? "open"
            throw LinuxShellError(
                code == EPERM || code == EACCES
                    ? .permissionDenied : code == ENETDOWN ? .interfaceDown : .captureFailed,
                operation: "\(operation): \(step)",
                detail: String(cString: strerror(code))
            )
        }
        self.interface = interface
        self.filter = filter
        fileDescriptor = descriptor
        self.frameBytes = frameBytes
        self.batch = max(1, min(batch, 64))
        buffers = .allocate(byteCount: frameBytes * self.batch, alignment: 16)
        info = Array(repeating: ftcp_frame_info(), count: self.batch)
    }

    deinit {
        close()
        buffers.deallocate()
    }

    /// Closes the capture; closing again does nothing.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Hands each waiting IPv4 packet to `body`, without its link-layer header, in a mutable
    /// buffer that is valid only during the call.
    ///
    /// - Parameter maxPackets: the most frames to process; 0 or less processes one batch.
    /// - Returns: how many packets were handed to `body` (0 when nothing was waiting).
    public func dispatch(maxPackets: Int, _ body: (CapturedFrame) -> Void) throws(LinuxShellError) -> Int {
        guard fileDescriptor >= 0 else { throw LinuxShellError(.closed, operation: "capture on \(interface)") }
        var budget = maxPackets <= 0 ? batch : maxPackets
        var delivered = 0
        while budget > 0 {
            let asked = min(budget, batch)
            let received = info.withUnsafeMutableBufferPointer { info in
                ftcp_packet_socket_receive(
                    fileDescriptor,
                    buffers.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    frameBytes,
                    UInt32(asked),
                    info.baseAddress!
                )
            }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                throw LinuxShellError(
                    code == ENETDOWN ? .interfaceDown : .captureFailed,
                    operation: "capture on \(interface): recvmmsg",
                    detail: String(cString: strerror(code))
                )
            }
            for index in 0..<Int(received) {
                if handleFrame(index, body) { delivered += 1 }
            }
            budget -= Int(received)
            if Int(received) < asked { break }
        }
        return delivered
    }

    /// The kernel's counters together with the capture's own.
    public var statistics: Statistics {
        get throws(LinuxShellError) {
            guard fileDescriptor >= 0 else {
                throw LinuxShellError(.closed, operation: "capture statistics on \(interface)")
            }
            var received: UInt64 = 0
            var dropped: UInt64 = 0
            guard ftcp_packet_socket_statistics(fileDescriptor, &received, &dropped) == 0 else {
                throw LinuxShellError(
                    .captureFailed,
                    operation: "capture statistics on \(interface)",
                    detail: String(cString: strerror(errno))
                )
            }
            // The kernel resets its counters at each reading: they add up here.
            counters.received &+= received
            counters.dropped &+= dropped
            return counters
        }
    }

    /// Strips the Ethernet header from frame `index` of the last batch and hands the IPv4
    /// packet on; returns whether it did.
    private func handleFrame(_ index: Int, _ body: (CapturedFrame) -> Void) -> Bool {
        let frameInfo = info[index]
        guard frameInfo.truncated == 0 else {
            counters.truncated += 1
            return false
        }
        guard frameInfo.packet_type != UInt8(FTCP_PACKET_OUTGOING) else {
            counters.outgoing += 1
            return false
        }
        let start = index * frameBytes
        let frame = UnsafeMutableRawBufferPointer(rebasing: buffers[start..<start + Int(frameInfo.stored)])
        let captured = frame.count
        guard captured >= 14 else {
            counters.malformed += 1
            return false
        }
        // The kernel hands a VLAN tag over in the auxiliary data, not in the frame; a tag still in
        // it (stacked 802.1ad) is skipped.
        var etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        var offset = 14
        if etherType == 0x8100 || etherType == 0x88a8 {
            guard captured >= 18 else {
                counters.malformed += 1
                return false
            }
            etherType = UInt16(frame[16]) << 8 | UInt16(frame[17])
            offset = 18
        }
        guard etherType == 0x0800 else {
            counters.nonIPv4 += 1
            return false
        }
        let available = captured - offset
        guard available >= 20, frame[offset] >> 4 == 4 else {
            counters.malformed += 1
            return false
        }
        // Ethernet pads short frames to 60 bytes: the IPv4 total length says where the packet ends.
        // A total length of 0 marks a GSO packet larger than 64 KiB ("BIG TCP"): keep all bytes.
        var length = Int(frame[offset + 2]) << 8 | Int(frame[offset + 3])
        if length == 0 { length = available }
        guard length >= 20, length <= available else {
            counters.malformed += 1
            return false
        }
        let status = frameInfo.status
        let checksum: CapturedFrame.ChecksumStatus =
            status & UInt32(FTCP_STATUS_CHECKSUM_NOT_READY) != 0
            ? .notComputedYet
            : status & UInt32(FTCP_STATUS_CHECKSUM_VALID) != 0 ? .verified : .unknown
        counters.delivered += 1
        body(
            CapturedFrame(
                packet: UnsafeMutableRawBufferPointer(rebasing: frame[offset..<offset + length]),
                destination: UnsafeRawBufferPointer(rebasing: frame[0..<6]),
                checksum: checksum
            )
        )
        return true
    }
}
