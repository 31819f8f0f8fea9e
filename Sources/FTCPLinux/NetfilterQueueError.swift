import Glibc

/// Why an NFQUEUE operation failed, with advice a person can act on.
///
/// The `code` says what kind of failure it was; `operation` names the step ("bind queue",
/// "set copy mode", "verdict"); `errno` is the kernel's or the C library's error number when
/// there is one. ``Code`` is a struct of static values, so adding a code breaks no caller.
public struct NetfilterQueueError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A system call on the netlink socket failed (see ``NetfilterQueueError/systemCallError``).
        public static let systemCall = Code("systemCall")
        /// The kernel refused for lack of privilege (EPERM): not root / no CAP_NET_ADMIN.
        public static let permissionDenied = Code("permissionDenied")
        /// The queue is already bound by another netlink socket (EPERM to a root caller, or EBUSY).
        public static let queueBusy = Code("queueBusy")
        /// The kernel does not support a requested configuration flag (EOPNOTSUPP).
        public static let flagUnsupported = Code("flagUnsupported")
        /// A verdict named a packet id the kernel does not hold (ENOENT).
        public static let unknownPacketID = Code("unknownPacketID")
        /// The kernel rejected a request for another reason.
        public static let kernelRejected = Code("kernelRejected")
        /// The kernel did not acknowledge a configuration request in time.
        public static let noAcknowledgement = Code("noAcknowledgement")
        /// A message from the kernel could not be parsed.
        public static let malformedMessage = Code("malformedMessage")
        /// A replacement payload is larger than a netlink attribute can carry.
        public static let payloadTooLarge = Code("payloadTooLarge")
        /// The queue was already closed.
        public static let closed = Code("closed")
    }

    /// The kind of failure.
    public let code: Code
    /// The queue number the operation was for.
    public let queue: UInt16
    /// The step that failed, e.g. `"bind queue"`.
    public let operation: String
    /// The errno the kernel or the C library returned, if any.
    public let errno: Int32?
    /// The failing system call, for ``Code/systemCall``.
    public let systemCallError: SystemCallError?

    public init(
        _ code: Code,
        queue: UInt16,
        operation: String,
        errno: Int32? = nil,
        systemCallError: SystemCallError? = nil
    ) {
        self.code = code
        self.queue = queue
        self.operation = operation
        self.errno = errno ?? systemCallError?.errno
        self.systemCallError = systemCallError
    }

    /// Classifies an errno the kernel put in a netlink error message.
    static func kernel(errno: Int32, queue: UInt16, operation: String) -> NetfilterQueueError {
        let code: Code
        switch errno {
        // The kernel answers EPERM both to a caller without CAP_NET_ADMIN and to a bind of a
        // queue another socket holds; a root caller can only be in the second case.
        case EPERM where operation == "bind queue" && geteuid() == 0: code = .queueBusy
        case EPERM, EACCES: code = .permissionDenied
        case EBUSY: code = .queueBusy
        case EOPNOTSUPP: code = .flagUnsupported
        case ENOENT where operation.hasPrefix("verdict"): code = .unknownPacketID
        default: code = .kernelRejected
        }
        return NetfilterQueueError(code, queue: queue, operation: operation, errno: errno)
    }

    /// What a person should check or do about this failure.
    public var advice: String {
        switch code {
        case .permissionDenied:
            return "are you root (NFQUEUE needs CAP_NET_ADMIN in the network namespace)?"
        case .queueBusy:
            return "is another process bound to queue \(queue)? stop it or choose another --queue"
        case .flagUnsupported:
            return "this kernel does not support the requested queue flag; run without it"
        case .unknownPacketID:
            return "the kernel holds no packet with that id: a verdict was given twice or after the queue was rebound"
        case .noAcknowledgement:
            return "the kernel did not answer; is nfnetlink_queue available (modprobe nfnetlink_queue)?"
        case .malformedMessage:
            return "a netlink message from the kernel was shorter than its headers claim; this is a bug to report"
        case .payloadTooLarge:
            return "a replacement payload must be at most \(NetfilterQueue.maximumPayloadBytes) bytes"
        case .closed:
            return "the queue was closed; open it again"
        case .systemCall:
            if errno == EPERM || errno == EACCES { return "are you root?" }
            if errno == EPROTONOSUPPORT { return "is nfnetlink available in this kernel?" }
            return "see the system call error"
        default:
            return "see the kernel's error"
        }
    }

    public var description: String {
        var text = "NFQUEUE \(queue): \(operation) failed"
        if let systemCallError {
            text += ": \(systemCallError)"
        } else if let errno {
            text += ": \(String(cString: strerror(errno))) (errno \(errno))"
        } else {
            text += " (\(code))"
        }
        return text + "; " + advice
    }
}
