import CNetfilterQueue
import Glibc

/// One NFQUEUE queue, bound over a plain `AF_NETLINK`/`NETLINK_NETFILTER` socket with
/// libnetfilter_queue's `nfq_nlmsg_*` message builders (no callbacks, no libmnl).
///
/// Packets arrive in batches from ``receive(maxPackets:timeout:)``; each must get exactly one
/// verdict from ``setVerdict(id:_:mark:replacementPayload:)`` or ``setVerdicts(_:)``, in any
/// order. A packet's bytes are a view of the buffer the kernel wrote them into, not a copy: the
/// caller may rewrite them in place and hand the same view back as the replacement, until it
/// next calls `receive`. Every configuration step asks the kernel for an acknowledgement and
/// checks it; a verdict the kernel rejects surfaces as a ``NetfilterQueueError`` from the next
/// `receive`.
///
/// Not thread-safe: use one instance from one thread.
public final class NetfilterQueue {
    /// How to configure the queue when binding it.
    public struct Options: Sendable {
        /// Socket receive buffer in bytes (set with `SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`).
        public var receiveBufferBytes: Int
        /// How many bytes of each packet the kernel copies to user space (at most
        /// ``NetfilterQueue/maximumCopyRange``).
        public var copyRange: UInt32
        /// `NFQA_CFG_F_GSO`: queue GSO super-packets whole instead of segmenting them first.
        public var acceptGSO: Bool
        /// `NFQA_CFG_F_FAIL_OPEN`: accept packets instead of dropping them when the queue is full.
        public var failOpen: Bool
        /// Maximum number of packets the kernel holds for this queue (kernel default: 1024).
        public var maximumQueueLength: UInt32?
        /// How long to wait for the kernel to acknowledge each configuration request.
        public var acknowledgementTimeout: Duration

        public init(
            receiveBufferBytes: Int = 64 << 20,
            copyRange: UInt32 = NetfilterQueue.maximumCopyRange,
            acceptGSO: Bool = false,
            failOpen: Bool = false,
            maximumQueueLength: UInt32? = nil,
            acknowledgementTimeout: Duration = .seconds(2)
        ) {
            self.receiveBufferBytes = receiveBufferBytes
            self.copyRange = copyRange
            self.acceptGSO = acceptGSO
            self.failOpen = failOpen
            self.maximumQueueLength = maximumQueueLength
            self.acknowledgementTimeout = acknowledgementTimeout
        }
    }

    /// One queued packet as the kernel described it.
    public struct Packet {
        /// The id a verdict must name.
        public var id: UInt32
        /// The packet from its network header on (at most `copyRange` bytes of it), where the
        /// kernel wrote it: valid, and the caller's to rewrite in place, until the next
        /// ``NetfilterQueue/receive(maxPackets:timeout:)``.
        public var bytes: UnsafeMutableRawBufferPointer
        /// A copy of ``bytes``, to keep.
        public var payload: [UInt8] { Array(bytes) }
        /// The packet's length before the copy range cut it (`NFQA_CAP_LEN`, else the payload length).
        public var originalLength: Int
        /// The copy range cut it: `bytes` is only its beginning.
        public var isTruncated: Bool { originalLength > bytes.count }
        /// Link-layer protocol (an EtherType such as 0x0800), in host byte order.
        public var hardwareProtocol: UInt16
        /// The netfilter hook the packet was queued from (`NF_INET_PRE_ROUTING` = 0 …).
        public var hook: UInt8
        /// The packet's firewall mark.
        public var mark: UInt32
        /// `NFQA_SKB_CSUMNOTREADY`: the transport checksum holds only the pseudo-header sum.
        public var checksumNotReady: Bool
        /// `NFQA_SKB_GSO`: the packet is a GSO super-packet (only with ``Options/acceptGSO``).
        public var isGSO: Bool
        /// `NFQA_SKB_CSUM_NOTVERIFIED`: the checksum was not verified yet.
        public var checksumNotVerified: Bool
        /// Interface index the packet came in on, if any.
        public var inputInterface: UInt32?
        /// Interface index the packet goes out on, if known.
        public var outputInterface: UInt32?
        /// The Ethernet source of a received frame (`NFQA_HWADDR`): the neighbour it came from.
        public var linkLayerSource: MACAddress?
    }

    /// What to do with a queued packet.
    public enum Verdict: Sendable {
        case accept
        case drop

        var netfilterValue: Int32 {
            switch self {
            case .accept: return NF_ACCEPT
            case .drop: return NF_DROP
            }
        }
    }

    /// One verdict for ``setVerdicts(_:)``.
    public struct VerdictRequest {
        public var id: UInt32
        public var verdict: Verdict
        public var mark: UInt32?
        /// The packet's new bytes, if they changed.
        public var replacementPayload: [UInt8]?
        /// The packet's new bytes where they lie (its ``Packet/bytes`` rewritten in place, most
        /// often): read when the verdict is sent, so valid until then.
        public var replacement: UnsafeRawBufferPointer?

        public init(id: UInt32, _ verdict: Verdict, mark: UInt32? = nil, replacementPayload: [UInt8]? = nil) {
            self.id = id
            self.verdict = verdict
            self.mark = mark
            self.replacementPayload = replacementPayload
        }

        /// A verdict whose replacement is read where it lies (see ``replacement``).
        public init(id: UInt32, _ verdict: Verdict, replacement: UnsafeRawBufferPointer) {
            self.id = id
            self.verdict = verdict
            self.replacement = replacement
        }
    }

    /// Largest replacement payload a verdict can carry (a netlink attribute length is 16 bits).
    public static let maximumPayloadBytes = 0xffff - 4
    /// The most the kernel copies of a packet, whatever is asked (`NFQNL_MAX_COPY_RANGE`, 0xffff
    /// less a netlink attribute header: 65,531). A GSO or GRO packet of 65,532 to 65,535 bytes
    /// arrives cut; ``Packet/isTruncated`` says so, and the bridges drop it (its sender sends the
    /// bytes again) rather than pass a packet they could not read whole.
    public static let maximumCopyRange: UInt32 = 0xffff - 4

    /// The queue number this instance is bound to.
    public let queue: UInt16
    /// The options it was opened with.
    public let options: Options
    /// The receive buffer size the kernel reports after configuration (`SO_RCVBUF`).
    public private(set) var effectiveReceiveBufferBytes: Int = 0
    /// Verdicts the kernel rejected so far (each also surfaced once as an error from `receive`).
    public private(set) var rejectedVerdicts: Int = 0

    private var fd: Int32
    private var sequence: UInt32 = 0
    /// Where the kernel writes queued packets, one datagram after the other from `receiveOffset`:
    /// the packets of a batch are views of it, so it is reused from its start only once every
    /// packet read into it has been handed out and the caller asked for more.
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private var receiveOffset = 0
    /// Room taken when more is read than `receiveBuffer` holds (a configuration answer awaited
    /// behind many queued packets), freed when it is reused.
    private var overflowBuffers: [UnsafeMutableRawBufferPointer] = []
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private var pendingPackets: [Packet] = []
    private var pendingErrors: [NetfilterQueueError] = []

    /// Room for a batch of 128 datagrams of super-packets of 64 KiB, and one more.
    private static let receiveBufferSize = 129 * largestDatagram
    /// A queued packet's datagram: the copy range, its attributes, the netlink headers.
    private static let largestDatagram = 72 * 1024
    private static let sendBufferSize = 128 * 1024
    private static let sendChunkLimit = 60 * 1024

    /// The netlink socket's file descriptor, for use with `poll` alongside other descriptors.
    public var fileDescriptor: Int32 { fd }

    private init(queue: UInt16, options: Options, fd: Int32) {
        self.queue = queue
        self.options = options
        self.fd = fd
        receiveBuffer = .allocate(byteCount: Self.receiveBufferSize, alignment: 8)
        sendBuffer = .allocate(byteCount: Self.sendBufferSize, alignment: 8)
    }

    deinit {
        if fd >= 0 {
            _ = Glibc.close(fd)
        }
        receiveBuffer.deallocate()
        for buffer in overflowBuffers { buffer.deallocate() }
        sendBuffer.deallocate()
    }

    /// Opens a netlink socket, binds it to `queue` and configures copy mode, flags and length.
    ///
    /// - Throws: ``NetfilterQueueError`` with ``NetfilterQueueError/Code/permissionDenied`` when not
    ///   root, ``NetfilterQueueError/Code/queueBusy`` when another socket holds the queue.
    public static func open(queue: UInt16, options: Options = Options()) throws(NetfilterQueueError) -> NetfilterQueue {
        let fd: Int32
        do throws(SystemCallError) {
            fd = try systemCall("socket(AF_NETLINK, NETLINK_NETFILTER)") {
                socket(AF_NETLINK, SocketType.raw | SocketType.closeOnExec, NETLINK_NETFILTER)
            }
        } catch {
            throw NetfilterQueueError(
                .systemCall,
                queue: queue,
                operation: "open netlink socket",
                systemCallError: error
            )
        }
        let instance = NetfilterQueue(queue: queue, options: options, fd: fd)
        try instance.configureSocket()
        try instance.bindAndConfigure()
        return instance
    }

    private func configureSocket() throws(NetfilterQueueError) {
        do throws(SystemCallError) {
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            _ = try withUnsafePointer(to: &address) { pointer throws(SystemCallError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic throws(SystemCallError) in
                    try systemCall("bind(AF_NETLINK)") {
                        Glibc.bind(fd, generic, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
            var size = Int32(clamping: options.receiveBufferBytes)
            do throws(SystemCallError) {
                try systemCall("setsockopt(SO_RCVBUFFORCE)") {
                    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
                }
            } catch  where error.errno == EPERM {
                // Without CAP_NET_ADMIN the kernel caps the buffer at net.core.rmem_max.
                try systemCall("setsockopt(SO_RCVBUF)") {
                    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                }
            }
            var actual: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            try systemCall("getsockopt(SO_RCVBUF)") {
                getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &length)
            }
            effectiveReceiveBufferBytes = Int(actual)
            var on: Int32 = 1
            try systemCall("setsockopt(NETLINK_NO_ENOBUFS)") {
                setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, socklen_t(MemoryLayout<Int32>.size))
            }
        } catch {
            throw NetfilterQueueError(
                .systemCall,
                queue: queue,
                operation: "configure netlink socket",
                systemCallError: error
            )
        }
    }

    private func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Starts a queue message at `offset` in the send buffer and returns its header.
    private func startMessage(at offset: Int, type: nfqnl_msg_types, acknowledge: Bool) -> UnsafeMutablePointer<
        nlmsghdr
    > {
        let base = sendBuffer.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self)
        let header = nfq_nlmsg_put(base, Int32(type.rawValue), UInt32(queue))!
        header.pointee.nlmsg_seq = nextSequence()
        if acknowledge {
            header.pointee.nlmsg_flags |= UInt16(NLM_F_ACK)
        }
        return header
    }

    private static func aligned(_ length: Int) -> Int { (length + 3) & ~3 }

    private func bindAndConfigure() throws(NetfilterQueueError) {
        var steps: [(sequence: UInt32, operation: String)] = []
        var offset = 0

        var header = startMessage(at: offset, type: NFQNL_MSG_CONFIG, acknowledge: true)
        nfq_nlmsg_cfg_put_cmd(header, UInt16(AF_INET), UInt8(NFQNL_CFG_CMD_BIND.rawValue))
        steps.append((header.pointee.nlmsg_seq, "bind queue"))
        offset += Self.aligned(Int(header.pointee.nlmsg_len))

        header = startMessage(at: offset, type: NFQNL_MSG_CONFIG, acknowledge: true)
        nfq_nlmsg_cfg_put_params(
            header,
            UInt8(NFQNL_COPY_PACKET.rawValue),
            Int32(min(options.copyRange, Self.maximumCopyRange))
        )
        steps.append((header.pointee.nlmsg_seq, "set copy mode"))
        offset += Self.aligned(Int(header.pointee.nlmsg_len))

        let mask = UInt32(NFQA_CFG_F_GSO) | UInt32(NFQA_CFG_F_FAIL_OPEN)
        var flags: UInt32 = 0
        if options.acceptGSO { flags |= UInt32(NFQA_CFG_F_GSO) }
        if options.failOpen { flags |= UInt32(NFQA_CFG_F_FAIL_OPEN) }
        header = startMessage(at: offset, type: NFQNL_MSG_CONFIG, acknowledge: true)
        ftcp_nlmsg_put_be32(header, UInt16(NFQA_CFG_FLAGS.rawValue), flags)
        ftcp_nlmsg_put_be32(header, UInt16(NFQA_CFG_MASK.rawValue), mask)
        steps.append(
            (header.pointee.nlmsg_seq, "set queue flags (GSO \(options.acceptGSO), fail-open \(options.failOpen))")
        )
        offset += Self.aligned(Int(header.pointee.nlmsg_len))

        if let length = options.maximumQueueLength {
            header = startMessage(at: offset, type: NFQNL_MSG_CONFIG, acknowledge: true)
            nfq_nlmsg_cfg_put_qmaxlen(header, length)
            steps.append((header.pointee.nlmsg_seq, "set queue length \(length)"))
            offset += Self.aligned(Int(header.pointee.nlmsg_len))
        }

        try send(byteCount: offset, operation: "configure queue")
        try awaitAcknowledgements(steps)
    }

    private func send(byteCount: Int, operation: String) throws(NetfilterQueueError) {
        do throws(SystemCallError) {
            let sent = try systemCall("send(netlink)") {
                Glibc.send(fd, sendBuffer.baseAddress, byteCount, 0)
            }
            if sent != byteCount {
                throw SystemCallError(call: "send(netlink) sent \(sent) of \(byteCount) bytes", errno: EMSGSIZE)
            }
        } catch {
            throw NetfilterQueueError(.systemCall, queue: queue, operation: operation, systemCallError: error)
        }
    }

    /// Waits for the kernel's answer to each configuration step; throws for the first that failed.
    private func awaitAcknowledgements(_ steps: [(sequence: UInt32, operation: String)]) throws(NetfilterQueueError) {
        var answers: [UInt32: Int32] = [:]
        let deadline = ContinuousClock.now.advanced(by: options.acknowledgementTimeout)
        while answers.count < steps.count {
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { break }
            guard try waitReadable(timeout: remaining, operation: "wait for acknowledgement") else { break }
            try readDatagrams(limit: Int.max) { sequence, code in
                answers[sequence] = code
            }
        }
        for step in steps {
            guard let code = answers[step.sequence] else {
                throw NetfilterQueueError(.noAcknowledgement, queue: queue, operation: step.operation)
            }
            if code != 0 {
                throw NetfilterQueueError.kernel(errno: -code, queue: queue, operation: step.operation)
            }
        }
    }

    /// Polls the socket; returns whether it is readable before `timeout` (nil waits forever).
    private func waitReadable(timeout: Duration?, operation: String) throws(NetfilterQueueError) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds: Int32
        if let timeout {
            if timeout <= .zero {
                milliseconds = 0
            } else {
                let (seconds, attoseconds) = timeout.components
                let rounded = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
                milliseconds = Int32(clamping: rounded)
            }
        } else {
            milliseconds = -1
        }
        do throws(SystemCallError) {
            let ready = try systemCall("poll") { poll(&descriptor, 1, milliseconds) }
            return ready > 0
        } catch {
            throw NetfilterQueueError(.systemCall, queue: queue, operation: operation, systemCallError: error)
        }
    }

    /// Reads datagrams without blocking until none is left or `limit` packets were collected into
    /// `pendingPackets`; error/ack messages go to `onAnswer(sequence, code)`.
    private func readDatagrams(limit: Int, onAnswer: (UInt32, Int32) -> Void) throws(NetfilterQueueError) {
        while pendingPackets.count < limit {
            let received: Int
            let inReceiveBuffer = receiveBuffer.count - receiveOffset >= Self.largestDatagram
            let room =
                inReceiveBuffer
                ? UnsafeMutableRawBufferPointer(rebasing: receiveBuffer[receiveOffset...]) : overflowRoom()
            do throws(SystemCallError) {
                received = try systemCall("recv(netlink)") {
                    recv(fd, room.baseAddress, room.count, Int32(MSG_DONTWAIT) | Int32(MSG_TRUNC))
                }
            } catch  where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
                return
            } catch  where error.errno == ENOBUFS {
                // Only possible if NETLINK_NO_ENOBUFS was refused: packets were dropped by the kernel.
                continue
            } catch {
                throw NetfilterQueueError(.systemCall, queue: queue, operation: "receive", systemCallError: error)
            }
            if received > room.count {
                throw NetfilterQueueError(
                    .malformedMessage,
                    queue: queue,
                    operation: "receive (datagram of \(received) bytes truncated)"
                )
            }
            try parseDatagram(at: room.baseAddress!, length: received, onAnswer: onAnswer)
            if inReceiveBuffer { receiveOffset += (received + 7) & ~7 }
        }
    }

    /// A datagram's room beyond the receive buffer, kept until the buffer is reused (rare: only
    /// an unbounded read, waiting for a configuration answer, goes past the buffer).
    private func overflowRoom() -> UnsafeMutableRawBufferPointer {
        let room = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.largestDatagram, alignment: 8)
        overflowBuffers.append(room)
        return room
    }

    private func parseDatagram(
        at start: UnsafeMutableRawPointer,
        length: Int,
        onAnswer: (UInt32, Int32) -> Void
    ) throws(NetfilterQueueError) {
        var remaining = Int32(length)
        var header = start.assumingMemoryBound(to: nlmsghdr.self)
        let packetType = UInt16(NFNL_SUBSYS_QUEUE << 8) | UInt16(NFQNL_MSG_PACKET.rawValue)
        while ftcp_nlmsg_ok(header, remaining) != 0 {
            let type = header.pointee.nlmsg_type
            if type == UInt16(NLMSG_ERROR) {
                guard Int(header.pointee.nlmsg_len) >= MemoryLayout<nlmsghdr>.size + MemoryLayout<nlmsgerr>.size else {
                    throw NetfilterQueueError(.malformedMessage, queue: queue, operation: "read netlink error message")
                }
                let errorMessage = ftcp_nlmsg_data(header)!.assumingMemoryBound(to: nlmsgerr.self)
                onAnswer(errorMessage.pointee.msg.nlmsg_seq, ftcp_nlmsg_error_code(header))
            } else if type == packetType {
                if let packet = try parsePacket(header) {
                    pendingPackets.append(packet)
                }
            }
            // NLMSG_NOOP, NLMSG_DONE and other types carry nothing for a queue.
            header = ftcp_nlmsg_next(header, &remaining)
        }
    }

    private func parsePacket(_ header: UnsafeMutablePointer<nlmsghdr>) throws(NetfilterQueueError) -> Packet? {
        let slots = Int(ftcp_nfqa_slots())
        var attributes = [UnsafeMutablePointer<nlattr>?](repeating: nil, count: slots)
        let result = attributes.withUnsafeMutableBufferPointer { buffer in
            nfq_nlmsg_parse(header, buffer.baseAddress)
        }
        guard result >= 0 else {
            throw NetfilterQueueError(.malformedMessage, queue: queue, operation: "parse queued packet")
        }
        func attribute(_ type: nfqnl_attr_type) -> UnsafeMutablePointer<nlattr>? {
            let index = Int(type.rawValue)
            return index < slots ? attributes[index] : nil
        }
        func be32(_ type: nfqnl_attr_type) -> UInt32? {
            guard let a = attribute(type), ftcp_nla_payload_len(a) >= 4 else { return nil }
            return UInt32(bigEndian: ftcp_nla_data(a)!.loadUnaligned(as: UInt32.self))
        }
        guard let packetHeader = attribute(NFQA_PACKET_HDR), ftcp_nla_payload_len(packetHeader) >= 7 else {
            throw NetfilterQueueError(
                .malformedMessage,
                queue: queue,
                operation: "parse queued packet (no packet header)"
            )
        }
        let raw = ftcp_nla_data(packetHeader)!
        let id = UInt32(bigEndian: raw.loadUnaligned(as: UInt32.self))
        let hardwareProtocol = UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        let hook = raw.load(fromByteOffset: 6, as: UInt8.self)

        var bytes = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        if let data = attribute(NFQA_PAYLOAD) {
            // The attribute lies in `receiveBuffer`, which this queue owns and may write.
            bytes = UnsafeMutableRawBufferPointer(
                start: UnsafeMutableRawPointer(mutating: ftcp_nla_data(data)),
                count: Int(ftcp_nla_payload_len(data))
            )
        }
        let info = be32(NFQA_SKB_INFO) ?? 0
        return Packet(
            id: id,
            bytes: bytes,
            originalLength: be32(NFQA_CAP_LEN).map(Int.init) ?? bytes.count,
            hardwareProtocol: hardwareProtocol,
            hook: hook,
            mark: be32(NFQA_MARK) ?? 0,
            checksumNotReady: info & UInt32(NFQA_SKB_CSUMNOTREADY) != 0,
            isGSO: info & UInt32(NFQA_SKB_GSO) != 0,
            checksumNotVerified: info & UInt32(NFQA_SKB_CSUM_NOTVERIFIED) != 0,
            inputInterface: be32(NFQA_IFINDEX_INDEV),
            outputInterface: be32(NFQA_IFINDEX_OUTDEV),
            linkLayerSource: linkLayerSource(attribute(NFQA_HWADDR))
        )
    }

    /// `struct nfqnl_msg_packet_hw`: a 16-bit length, padding, eight address bytes; only a
    /// six-byte (Ethernet) address is kept.
    private func linkLayerSource(_ attribute: UnsafeMutablePointer<nlattr>?) -> MACAddress? {
        guard let attribute, ftcp_nla_payload_len(attribute) >= 12, let data = ftcp_nla_data(attribute) else {
            return nil
        }
        let length = UInt16(bigEndian: data.loadUnaligned(as: UInt16.self))
        guard length == 6 else { return nil }
        return MACAddress(UnsafeRawBufferPointer(start: data, count: 12), at: 4)
    }

    /// Waits up to `timeout` (nil: forever, zero: not at all) for queued packets and returns what
    /// is there, at most `maxPackets`; an empty array means the timeout passed.
    ///
    /// - Throws: a ``NetfilterQueueError`` for a failed system call, or once for each verdict the
    ///   kernel rejected since the last call (packets received with it are kept for the next call).
    public func receive(maxPackets: Int = 64, timeout: Duration? = nil) throws(NetfilterQueueError) -> [Packet] {
        guard fd >= 0 else { throw NetfilterQueueError(.closed, queue: queue, operation: "receive") }
        if !pendingErrors.isEmpty {
            throw pendingErrors.removeFirst()
        }
        let limit = max(1, maxPackets)
        // Every packet read so far has been handed out, and its caller is done with it.
        if pendingPackets.isEmpty {
            receiveOffset = 0
            for buffer in overflowBuffers { buffer.deallocate() }
            overflowBuffers.removeAll()
        }
        if pendingPackets.isEmpty, try !waitReadable(timeout: timeout, operation: "wait for packets") {
            return []
        }
        try readDatagrams(limit: limit) { _, code in
            if code != 0 {
                rejectedVerdicts += 1
                pendingErrors.append(.kernel(errno: -code, queue: queue, operation: "verdict"))
            }
        }
        if pendingPackets.isEmpty, !pendingErrors.isEmpty {
            throw pendingErrors.removeFirst()
        }
        let batch = Array(pendingPackets.prefix(limit))
        pendingPackets.removeFirst(batch.count)
        return batch
    }

    /// Gives one packet its verdict, optionally with a new mark and a replacement payload.
    public func setVerdict(
        id: UInt32,
        _ verdict: Verdict,
        mark: UInt32? = nil,
        replacementPayload: [UInt8]? = nil
    ) throws(NetfilterQueueError) {
        try setVerdicts([VerdictRequest(id: id, verdict, mark: mark, replacementPayload: replacementPayload)])
    }

    /// Gives many packets their verdicts in as few `send` calls as possible (any order of ids).
    public func setVerdicts(_ requests: [VerdictRequest]) throws(NetfilterQueueError) {
        guard fd >= 0 else { throw NetfilterQueueError(.closed, queue: queue, operation: "verdict") }
        var offset = 0
        for request in requests {
            let payloadBytes = request.replacement?.count ?? request.replacementPayload?.count ?? 0
            if payloadBytes > Self.maximumPayloadBytes {
                throw NetfilterQueueError(.payloadTooLarge, queue: queue, operation: "verdict for packet \(request.id)")
            }
            let needed = 64 + Self.aligned(payloadBytes)
            if offset > 0, offset + needed > Self.sendChunkLimit {
                try send(byteCount: offset, operation: "send verdicts")
                offset = 0
            }
            let header = startMessage(at: offset, type: NFQNL_MSG_VERDICT, acknowledge: false)
            nfq_nlmsg_verdict_put(header, Int32(bitPattern: request.id), request.verdict.netfilterValue)
            if let mark = request.mark {
                nfq_nlmsg_verdict_put_mark(header, mark)
            }
            if let replacement = request.replacement {
                nfq_nlmsg_verdict_put_pkt(header, replacement.baseAddress, UInt32(replacement.count))
            } else if let payload = request.replacementPayload {
                payload.withUnsafeBytes { bytes in
                    nfq_nlmsg_verdict_put_pkt(header, bytes.baseAddress, UInt32(bytes.count))
                }
            }
            offset += Self.aligned(Int(header.pointee.nlmsg_len))
        }
        if offset > 0 {
            try send(byteCount: offset, operation: "send verdicts")
        }
    }

    /// Unbinds the queue (checking the kernel's answer) and closes the socket.
    ///
    /// The kernel drops every packet still waiting for a verdict when the queue is unbound, so
    /// give verdicts first. Closing twice is harmless.
    public func close() throws(NetfilterQueueError) {
        guard fd >= 0 else { return }
        defer {
            _ = Glibc.close(fd)
            fd = -1
        }
        let header = startMessage(at: 0, type: NFQNL_MSG_CONFIG, acknowledge: true)
        nfq_nlmsg_cfg_put_cmd(header, UInt16(AF_INET), UInt8(NFQNL_CFG_CMD_UNBIND.rawValue))
        let step = (header.pointee.nlmsg_seq, "unbind queue")
        try send(byteCount: Int(header.pointee.nlmsg_len), operation: "unbind queue")
        try awaitAcknowledgements([step])
    }
}
