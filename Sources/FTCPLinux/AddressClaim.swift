import FTCPWire
import Glibc

/// Why claiming, releasing or looking up an IPv4 address failed, with advice a person can act on.
///
/// `operation` names the step ("add 10.96.0.5/24 to eth0"); `kernelMessage` carries the kernel's
/// extended-ack text when it gave one; `equivalentCommand` is the `ip` command that does the same,
/// for trying by hand. ``Code`` is a struct of static values, so adding a code breaks no caller.
public struct AddressClaimError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The named interface does not exist in this network namespace.
        public static let noSuchInterface = Code("noSuchInterface")
        /// The caller lacks CAP_NET_ADMIN.
        public static let permissionDenied = Code("permissionDenied")
        /// The prefix length is not 0…32.
        public static let invalidPrefixLength = Code("invalidPrefixLength")
        /// The kernel refused the request for another reason (see ``AddressClaimError/errno``).
        public static let kernelRefused = Code("kernelRefused")
        /// The netlink socket itself failed (see ``AddressClaimError/systemCallError``).
        public static let netlinkFailed = Code("netlinkFailed")
        /// The kernel did not answer in time, or answered with something that is not netlink.
        public static let noAnswer = Code("noAnswer")
    }

    public let code: Code
    /// The step that failed and what it was applied to.
    public let operation: String
    /// The errno the kernel answered with, if it refused the request.
    public let errno: Int32?
    /// The kernel's extended-ack message, if any.
    public let kernelMessage: String?
    /// The failing system call, if the failure came from one.
    public let systemCallError: SystemCallError?
    /// The `ip` command that does the same, for trying it by hand.
    public let equivalentCommand: String?

    public init(
        _ code: Code,
        operation: String,
        errno: Int32? = nil,
        kernelMessage: String? = nil,
        systemCallError: SystemCallError? = nil,
        equivalentCommand: String? = nil
    ) {
        self.code = code
        self.operation = operation
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.systemCallError = systemCallError
        self.equivalentCommand = equivalentCommand
    }

    /// What a person should check or do about this failure.
    public var advice: String {
        switch code {
        case .noSuchInterface:
            return "is the interface name right, are you in the right network namespace? "
                + "(`ip -brief link` lists this namespace's interfaces)"
        case .permissionDenied:
            return "adding and removing addresses needs CAP_NET_ADMIN: run as root"
        case .invalidPrefixLength:
            return "give a prefix length from 0 to 32, the one of the service subnet (e.g. 24)"
        case .noAnswer:
            return "the kernel did not acknowledge the request: retry, and check `ip -brief addr` for the result"
        default:
            if let equivalentCommand {
                return "check the address and interface; try `\(equivalentCommand)` by hand to see the kernel's answer"
            }
            return "see the system call error"
        }
    }

    public var description: String {
        var text = "\(operation) failed"
        if let errno {
            let reason = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
            text += ": the kernel answered \(reason) (errno \(errno))"
        }
        if let kernelMessage, !kernelMessage.isEmpty { text += " (\(kernelMessage))" }
        if let systemCallError { text += ": \(systemCallError)" }
        return text + "; " + advice
    }
}

/// Adds and removes an IPv4 address on one interface through rtnetlink, and announces it with
/// gratuitous ARP: what a secondary does when it takes over the primary's service address.
///
/// Every request goes over a fresh `AF_NETLINK`/`NETLINK_ROUTE` socket in the calling thread's
/// network namespace (use ``NetworkNamespace/run(in:_:)`` to act in another) and waits for the
/// kernel's acknowledgement, so a returned value means the kernel has done it. Needs CAP_NET_ADMIN;
/// announcing needs CAP_NET_RAW.
public struct AddressClaim: Sendable {
    /// The interface the address is claimed on.
    public let interface: String
    /// The prefix length the address is added with (the service subnet's).
    public let prefixLength: Int

    /// What ``claim(address:)`` found.
    public enum ClaimResult: Hashable, Sendable {
        /// The kernel added the address.
        case added
        /// The address was already on the interface (EEXIST): nothing changed.
        case alreadyPresent
    }

    /// What ``release(address:)`` found.
    public enum ReleaseResult: Hashable, Sendable {
        /// The kernel removed the address.
        case removed
        /// The address was not on the interface (EADDRNOTAVAIL): nothing changed.
        case alreadyAbsent
    }

    /// - Parameters:
    ///   - interface: the interface name, e.g. `"eth0"`.
    ///   - prefixLength: 0…32; checked when the address is claimed.
    public init(interface: String, prefixLength: Int = 24) {
        self.interface = interface
        self.prefixLength = prefixLength
    }

    /// Adds `address`/``prefixLength`` to the interface (`RTM_NEWADDR`). Adding an address that is
    /// already there is harmless and returns ``ClaimResult/alreadyPresent``.
    @discardableResult
    public func claim(address: IPv4Address) throws(AddressClaimError) -> ClaimResult {
        let command = "ip addr add \(address)/\(prefixLength) dev \(interface)"
        let operation = "add \(address)/\(prefixLength) to \(interface)"
        guard (0...32).contains(prefixLength) else {
            throw AddressClaimError(.invalidPrefixLength, operation: operation, equivalentCommand: command)
        }
        let index = try Self.interfaceIndex(interface, operation: operation)
        let request = Netlink.addressRequest(
            type: Netlink.newAddress,
            flags: Netlink.create | Netlink.exclusive,
            address: address,
            prefixLength: UInt8(prefixLength),
            interfaceIndex: index
        )
        let socket = try Netlink.Socket(operation: operation)
        let errno = try socket.acknowledge(request, operation: operation, command: command)
        switch errno {
        case 0: return .added
        case EEXIST: return .alreadyPresent
        default: throw Netlink.refusal(errno, socket.lastMessage, operation: operation, command: command)
        }
    }

    /// Removes `address` from the interface (`RTM_DELADDR`). Removing an address that is not there
    /// is harmless and returns ``ReleaseResult/alreadyAbsent``.
    @discardableResult
    public func release(address: IPv4Address) throws(AddressClaimError) -> ReleaseResult {
        let command = "ip addr del \(address)/\(prefixLength) dev \(interface)"
        let operation = "remove \(address) from \(interface)"
        let index = try Self.interfaceIndex(interface, operation: operation)
        // Only IFA_LOCAL: the kernel then matches the address whatever prefix it was added with
        // (with IFA_ADDRESS it would also require the same prefix length).
        let request = Netlink.addressRequest(
            type: Netlink.deleteAddress,
            flags: 0,
            address: address,
            prefixLength: 0,
            interfaceIndex: index,
            attributes: [Netlink.attributeLocal]
        )
        let socket = try Netlink.Socket(operation: operation)
        let errno = try socket.acknowledge(request, operation: operation, command: command)
        switch errno {
        case 0: return .removed
        case EADDRNOTAVAIL: return .alreadyAbsent
        default: throw Netlink.refusal(errno, socket.lastMessage, operation: operation, command: command)
        }
    }

    /// Whether `address` is on this claim's interface.
    public func isAddressPresent(address: IPv4Address) throws(AddressClaimError) -> Bool {
        try Self.isAddressPresent(address: address, interface: interface)
    }

    /// Whether `address` is assigned to `interface` in the calling thread's network namespace
    /// (an `RTM_GETADDR` dump).
    public static func isAddressPresent(address: IPv4Address, interface: String) throws(AddressClaimError) -> Bool {
        let operation = "look up the IPv4 addresses of \(interface)"
        let index = try interfaceIndex(interface, operation: operation)
        let socket = try Netlink.Socket(operation: operation)
        let addresses = try socket.dumpAddresses(operation: operation)
        return addresses.contains { $0.interfaceIndex == index && $0.address == address }
    }

    /// Announces `address` with gratuitous ARP from this interface, blocking until done: `count`
    /// announcements (each a gratuitous request and a gratuitous reply), `intervalMilliseconds` apart,
    /// the first at once.
    ///
    /// A poll loop that must not block drives an ``AnnouncementSchedule`` and
    /// ``ARPSocket/announce(address:)`` itself instead.
    public func announce(address: IPv4Address, count: Int = 5, intervalMilliseconds: Int = 200) throws(LinuxShellError)
    {
        let socket = try ARPSocket(interface: interface)
        defer { socket.close() }
        try Self.announce(
            address: address,
            on: socket,
            schedule: AnnouncementSchedule(
                count: count,
                intervalMilliseconds: UInt64(max(0, intervalMilliseconds))
            )
        )
    }

    /// Announces `address` on an open socket following `schedule`, sleeping between announcements.
    public static func announce(address: IPv4Address, on socket: ARPSocket, schedule: AnnouncementSchedule)
        throws(LinuxShellError)
    {
        let start = ContinuousClock.now
        var sent = 0
        while sent < schedule.count {
            let due = schedule.due(sent: sent, start: start, now: .now)
            for _ in due { try socket.announce(address: address) }
            sent = due.upperBound
            if let next = schedule.deadline(of: sent, start: start) {
                let remaining = ContinuousClock.now.duration(to: next)
                if remaining > .zero {
                    let (seconds, attoseconds) = remaining.components
                    var pause = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
                    var left = timespec()
                    while nanosleep(&pause, &left) == -1 && Glibc.errno == EINTR { pause = left }
                }
            }
        }
    }

    private static func interfaceIndex(_ interface: String, operation: String) throws(AddressClaimError) -> UInt32 {
        let index = if_nametoindex(interface)
        guard index != 0 else {
            throw AddressClaimError(
                .noSuchInterface,
                operation: operation,
                systemCallError: SystemCallError(call: "if_nametoindex(\(interface))", errno: Glibc.errno)
            )
        }
        return index
    }
}

/// When each of a fixed number of announcements is due: the first at the start, then one every
/// interval. Pure: a poll loop asks it what is due now and how long it may sleep, so announcing
/// never blocks the loop.
///
/// ```swift
/// let due = schedule.due(sent: sent, elapsedMilliseconds: now.milliseconds(since: start))
/// for _ in due { try socket.announce(address: address) }
/// sent = due.upperBound
/// ```
public struct AnnouncementSchedule: Hashable, Sendable {
    /// How many announcements in all.
    public let count: Int
    /// Milliseconds between two announcements.
    public let intervalMilliseconds: UInt64

    /// - Parameters:
    ///   - count: announcements in all (negative counts as 0); RFC 5227 uses 2, ftcp 5 by default.
    ///   - intervalMilliseconds: the pause between two; 0 makes all due at once.
    public init(count: Int = 5, intervalMilliseconds: UInt64 = 200) {
        self.count = max(0, count)
        self.intervalMilliseconds = intervalMilliseconds
    }

    /// Milliseconds after the start at which announcement `index` (0-based) is due; `nil` for an
    /// index outside 0..<count.
    public func offsetMilliseconds(of index: Int) -> UInt64? {
        guard index >= 0, index < count else { return nil }
        let (offset, overflow) = UInt64(index).multipliedReportingOverflow(by: intervalMilliseconds)
        return overflow ? UInt64.max : offset
    }

    /// How many announcements are due once `elapsedMilliseconds` have passed since the start.
    public func dueCount(elapsedMilliseconds: UInt64) -> Int {
        guard count > 0 else { return 0 }
        guard intervalMilliseconds > 0 else { return count }
        let passed = elapsedMilliseconds / intervalMilliseconds
        return passed >= UInt64(count - 1) ? count : Int(passed) + 1
    }

    /// The announcements to send now, given that `sent` were sent already: empty when none is due.
    public func due(sent: Int, elapsedMilliseconds: UInt64) -> Range<Int> {
        let lower = min(max(0, sent), count)
        return lower..<max(lower, dueCount(elapsedMilliseconds: elapsedMilliseconds))
    }

    /// Milliseconds until the next announcement after `sent` ones is due (0 when it is due now),
    /// or `nil` when all are sent: a poll loop's timeout.
    public func millisecondsUntilNext(sent: Int, elapsedMilliseconds: UInt64) -> UInt64? {
        guard let offset = offsetMilliseconds(of: max(0, sent)) else { return nil }
        return offset > elapsedMilliseconds ? offset - elapsedMilliseconds : 0
    }

    /// ``due(sent:elapsedMilliseconds:)`` on a clock's instants (e.g. `ContinuousClock`); an
    /// instant before the start counts as the start.
    public func due<Instant: InstantProtocol>(sent: Int, start: Instant, now: Instant) -> Range<Int>
    where Instant.Duration == Duration {
        due(sent: sent, elapsedMilliseconds: Self.milliseconds(start.duration(to: now)))
    }

    /// The instant announcement `index` is due, or `nil` for an index outside 0..<count.
    public func deadline<Instant: InstantProtocol>(of index: Int, start: Instant) -> Instant?
    where Instant.Duration == Duration {
        guard let offset = offsetMilliseconds(of: index) else { return nil }
        return start.advanced(by: .milliseconds(Int64(clamping: offset)))
    }

    private static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1000)
        return overflow ? UInt64.max : whole &+ UInt64(attoseconds / 1_000_000_000_000_000)
    }
}

/// The few rtnetlink messages ``AddressClaim`` needs, built and parsed as bytes (Swift's Glibc
/// module has no <linux/netlink.h>). Netlink is in host byte order; addresses in network order.
enum Netlink {
    static let routeProtocol: Int32 = 0  // NETLINK_ROUTE
    static let solNetlink: Int32 = 270  // SOL_NETLINK
    static let capAck: Int32 = 10  // NETLINK_CAP_ACK
    static let extendedAck: Int32 = 11  // NETLINK_EXT_ACK

    static let error: UInt16 = 2  // NLMSG_ERROR
    static let done: UInt16 = 3  // NLMSG_DONE
    static let newAddress: UInt16 = 20  // RTM_NEWADDR
    static let deleteAddress: UInt16 = 21  // RTM_DELADDR
    static let getAddress: UInt16 = 22  // RTM_GETADDR

    static let request: UInt16 = 0x1  // NLM_F_REQUEST
    static let ack: UInt16 = 0x4  // NLM_F_ACK
    static let dump: UInt16 = 0x300  // NLM_F_DUMP
    static let exclusive: UInt16 = 0x200  // NLM_F_EXCL
    static let create: UInt16 = 0x400  // NLM_F_CREATE
    static let capped: UInt16 = 0x100  // NLM_F_CAPPED, on an NLMSG_ERROR
    static let ackTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS, on an NLMSG_ERROR
    static let errorAttributeMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG

    static let attributeAddress: UInt16 = 1  // IFA_ADDRESS
    static let attributeLocal: UInt16 = 2  // IFA_LOCAL

    static let headerLength = 16  // sizeof(struct nlmsghdr)
    static let addressMessageLength = 8  // sizeof(struct ifaddrmsg)

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// An `RTM_NEWADDR`/`RTM_DELADDR` request for an IPv4 address, asking for an acknowledgement;
    /// `attributes` says which of `IFA_LOCAL` and `IFA_ADDRESS` carry the address.
    static func addressRequest(
        type: UInt16,
        flags: UInt16,
        address: IPv4Address,
        prefixLength: UInt8,
        interfaceIndex: UInt32,
        attributes: [UInt16] = [attributeLocal, attributeAddress]
    ) -> [UInt8] {
        var body: [UInt8] = [UInt8(AF_INET), prefixLength, 0, 0]  // family, prefix, flags, scope universe
        append(interfaceIndex, to: &body)
        for attribute in attributes {
            append(UInt16(8), to: &body)
            append(attribute, to: &body)
            body += address.octets
        }
        return message(type: type, flags: request | ack | flags, body: body)
    }

    /// An `RTM_GETADDR` dump request for every IPv4 address.
    static func addressDump() -> [UInt8] {
        var body: [UInt8] = [UInt8(AF_INET), 0, 0, 0]
        append(UInt32(0), to: &body)
        return message(type: getAddress, flags: request | dump, body: body)
    }

    private static func message(type: UInt16, flags: UInt16, body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        append(UInt32(headerLength + body.count), to: &bytes)
        append(type, to: &bytes)
        append(flags, to: &bytes)
        append(UInt32(0), to: &bytes)  // sequence, set by the socket
        append(UInt32(0), to: &bytes)  // port id: the kernel fills it in
        return bytes + body
    }

    static func append<Value: FixedWidthInteger>(_ value: Value, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value) { bytes += $0 }  // host byte order
    }

    static func read<Value: FixedWidthInteger>(_: Value.Type, _ bytes: ArraySlice<UInt8>, at offset: Int) -> Value? {
        let start = bytes.startIndex + offset
        guard offset >= 0, start + MemoryLayout<Value>.size <= bytes.endIndex else { return nil }
        var value = Value.zero
        withUnsafeMutableBytes(of: &value) { raw in
            for index in 0..<MemoryLayout<Value>.size { raw[index] = bytes[start + index] }
        }
        return value
    }

    /// One netlink message of a received datagram: its header fields and payload.
    struct Message {
        var type: UInt16
        var flags: UInt16
        var sequence: UInt32
        var payload: ArraySlice<UInt8>
    }

    /// Splits a received datagram into messages; stops at the first malformed header.
    static func messages(in datagram: ArraySlice<UInt8>) -> [Message] {
        var result: [Message] = []
        var offset = 0
        while let length = read(UInt32.self, datagram, at: offset),
            let type = read(UInt16.self, datagram, at: offset + 4),
            let flags = read(UInt16.self, datagram, at: offset + 6),
            let sequence = read(UInt32.self, datagram, at: offset + 8)
        {
            let size = Int(length)
            guard size >= headerLength, offset + size <= datagram.count else { break }
            let start = datagram.startIndex + offset
            result.append(
                Message(
                    type: type,
                    flags: flags,
                    sequence: sequence,
                    payload: datagram[(start + headerLength)..<(start + size)]
                )
            )
            offset += align(size)
        }
        return result
    }

    /// The route attributes (type, value) in `bytes`; stops at the first malformed one.
    static func attributes(in bytes: ArraySlice<UInt8>) -> [(type: UInt16, value: ArraySlice<UInt8>)] {
        var result: [(type: UInt16, value: ArraySlice<UInt8>)] = []
        var offset = 0
        while let length = read(UInt16.self, bytes, at: offset), let type = read(UInt16.self, bytes, at: offset + 2) {
            let size = Int(length)
            guard size >= 4, offset + size <= bytes.count else { break }
            let start = bytes.startIndex + offset
            result.append((type: type & 0x3fff, value: bytes[(start + 4)..<(start + size)]))
            offset += align(size)
        }
        return result
    }

    static func refusal(_ errno: Int32, _ message: String?, operation: String, command: String) -> AddressClaimError {
        let code: AddressClaimError.Code
        switch errno {
        case EPERM, EACCES: code = .permissionDenied
        case ENODEV: code = .noSuchInterface
        default: code = .kernelRefused
        }
        return AddressClaimError(
            code,
            operation: operation,
            errno: errno,
            kernelMessage: message,
            equivalentCommand: command
        )
    }

    /// An IPv4 address of an interface, as a dump reports it.
    struct InterfaceAddress {
        var interfaceIndex: UInt32
        var address: IPv4Address
    }

    /// One rtnetlink socket, for one request at a time.
    final class Socket {
        let descriptor: Int32
        private var sequence: UInt32 = 0
        /// The kernel's extended-ack text on the last acknowledgement, if any.
        private(set) var lastMessage: String?

        init(operation: String) throws(AddressClaimError) {
            do {
                descriptor = try systemCall("socket(AF_NETLINK, NETLINK_ROUTE)") {
                    socket(AF_NETLINK, SocketType.raw | SocketType.closeOnExec, routeProtocol)
                }
            } catch {
                throw Socket.failure(error, operation: operation)
            }
            // Ask for the kernel's error text and a short ack; older kernels lack these: not fatal.
            try? setIntegerSocketOption(
                descriptor,
                level: solNetlink,
                option: extendedAck,
                value: 1,
                name: "setsockopt(NETLINK_EXT_ACK)"
            )
            try? setIntegerSocketOption(
                descriptor,
                level: solNetlink,
                option: capAck,
                value: 1,
                name: "setsockopt(NETLINK_CAP_ACK)"
            )
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            sequence = UInt32(truncatingIfNeeded: UInt64(time(nil)))
        }

        deinit { Glibc.close(descriptor) }

        private static func failure(_ error: SystemCallError, operation: String) -> AddressClaimError {
            switch error.errno {
            case EAGAIN, EWOULDBLOCK: AddressClaimError(.noAnswer, operation: operation, systemCallError: error)
            case EPERM, EACCES: AddressClaimError(.permissionDenied, operation: operation, systemCallError: error)
            default: AddressClaimError(.netlinkFailed, operation: operation, systemCallError: error)
            }
        }

        /// Sends `request` with a fresh sequence number; returns that number.
        private func send(_ request: [UInt8], operation: String) throws(AddressClaimError) -> UInt32 {
            sequence &+= 1
            var bytes = request
            let number = sequence
            withUnsafeBytes(of: number) { raw in bytes.replaceSubrange(8..<12, with: raw) }
            let descriptor = descriptor
            do {
                try systemCall("send(AF_NETLINK)") {
                    bytes.withUnsafeBytes { raw in Glibc.send(descriptor, raw.baseAddress, raw.count, 0) }
                }
            } catch {
                throw Socket.failure(error, operation: operation)
            }
            return sequence
        }

        private func receive(operation: String) throws(AddressClaimError) -> ArraySlice<UInt8> {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let descriptor = descriptor
            let count: Int
            do {
                count = try systemCall("recv(AF_NETLINK)") {
                    buffer.withUnsafeMutableBytes { raw in recv(descriptor, raw.baseAddress, raw.count, 0) }
                }
            } catch {
                throw Socket.failure(error, operation: operation)
            }
            return buffer[0..<min(count, buffer.count)]
        }

        /// Sends a request that asks for an acknowledgement and returns the kernel's errno for it
        /// (0 when it succeeded).
        func acknowledge(_ request: [UInt8], operation: String, command: String) throws(AddressClaimError) -> Int32 {
            let sent = try send(request, operation: operation)
            lastMessage = nil
            while true {
                for message in Netlink.messages(in: try receive(operation: operation))
                where message.sequence == sent && message.type == Netlink.error {
                    guard let code = Netlink.read(Int32.self, message.payload, at: 0) else {
                        throw AddressClaimError(.noAnswer, operation: operation, equivalentCommand: command)
                    }
                    if message.flags & Netlink.ackTLVs != 0 {
                        // The error, the request (only its header when capped), then attributes.
                        var skipped = Netlink.headerLength
                        if message.flags & Netlink.capped == 0 {
                            skipped = Netlink.align(Int(Netlink.read(UInt32.self, message.payload, at: 4) ?? 0))
                        }
                        let start = message.payload.startIndex + 4 + skipped
                        if start <= message.payload.endIndex {
                            for attribute in Netlink.attributes(in: message.payload[start...])
                            where attribute.type == Netlink.errorAttributeMessage {
                                lastMessage = String(decoding: attribute.value.prefix { $0 != 0 }, as: UTF8.self)
                            }
                        }
                    }
                    return -code
                }
            }
        }

        /// Every IPv4 address of every interface (an `RTM_GETADDR` dump).
        func dumpAddresses(operation: String) throws(AddressClaimError) -> [InterfaceAddress] {
            let sent = try send(Netlink.addressDump(), operation: operation)
            var result: [InterfaceAddress] = []
            while true {
                for message in Netlink.messages(in: try receive(operation: operation)) where message.sequence == sent {
                    switch message.type {
                    case Netlink.done:
                        return result
                    case Netlink.error:
                        let code = Netlink.read(Int32.self, message.payload, at: 0) ?? 0
                        if code == 0 { return result }
                        throw Netlink.refusal(-code, nil, operation: operation, command: "ip -4 addr show")
                    case Netlink.newAddress:
                        guard message.payload.count >= Netlink.addressMessageLength,
                            message.payload[message.payload.startIndex] == UInt8(AF_INET),
                            let index = Netlink.read(UInt32.self, message.payload, at: 4)
                        else { continue }
                        let attributes = Netlink.attributes(in: message.payload.dropFirst(Netlink.addressMessageLength))
                        let local =
                            attributes.first { $0.type == Netlink.attributeLocal && $0.value.count == 4 }
                            ?? attributes.first { $0.type == Netlink.attributeAddress && $0.value.count == 4 }
                        if let value = local?.value {
                            let octets = Array(value)
                            result.append(
                                InterfaceAddress(
                                    interfaceIndex: index,
                                    address: IPv4Address(octets[0], octets[1], octets[2], octets[3])
                                )
                            )
                        }
                    default:
                        continue
                    }
                }
            }
        }
    }
}
