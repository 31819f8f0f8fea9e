import FTCPWire

/// The SYNs of selected outbound connections that wait for the other server's (Koch et al. §7.2):
/// "When it receives the first SYN segment, P's bridge creates the output queues and enqueues
/// the segment. When the bridge of one server receives the other server's SYN segment, it
/// calculates the sequence number offset, creates a SYN segment and sends it to T."
///
/// The two kernels choose their ephemeral ports on their own, so the 4-tuple alone cannot pair
/// the SYNs. They are paired by remote endpoint and order: a deterministic application opens its
/// connections to one endpoint in the same order on both servers, so the n-th SYN of one kernel
/// to T belongs with the n-th of the other. A SYN from the same local port as one the other
/// kernel is waiting with (a fixed source port, active FTP's 20) pairs with that one first. A
/// retransmitted SYN (same local port) replaces the one waiting. Pure: no I/O, no clock.
struct OutboundPairing: Sendable {
    /// A remote endpoint the servers connect to.
    struct Endpoint: Hashable, Sendable {
        var address: IPv4Address
        var port: UInt16
    }

    /// One kernel's SYN, kept whole: if it finds no partner it goes out (or is refused) as it is.
    struct WaitingSYN: Sendable {
        var localPort: UInt16
        var bytes: [UInt8]
        var since: MonotonicTime

        /// The SYN's fields (nil only if its bytes, checked when it was queued, were not a packet).
        var fields: TCPPacketFields? { try? TCPPacketFields(parsing: bytes) }

        /// The connection it opens, by the remote end and this kernel's local port.
        var key: ConnectionKey {
            let remote = fields
            return ConnectionKey(
                clientAddress: remote?.destination ?? IPv4Address(0, 0, 0, 0),
                clientPort: remote?.destinationPort ?? 0,
                serverPort: localPort
            )
        }
    }

    enum Outcome: Sendable {
        /// The other kernel's SYN for the same connection is here: both leave the table.
        case paired(primary: WaitingSYN, secondary: WaitingSYN)
        /// Kept until the other's comes (or replaced one waiting from the same port).
        case waiting
        /// The table is full: the caller serves this SYN unprotected.
        case full
    }

    private var primary: [Endpoint: [WaitingSYN]] = [:]
    private var secondary: [Endpoint: [WaitingSYN]] = [:]
    /// SYNs waiting, both kernels together.
    private(set) var count = 0
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// A kernel's SYN to `endpoint`.
    mutating func add(_ syn: WaitingSYN, from role: ServerRole, to endpoint: Endpoint) -> Outcome {
        var own = (role == .primary ? primary : secondary)[endpoint] ?? []
        if let index = own.firstIndex(where: { $0.localPort == syn.localPort }) {
            own[index].bytes = syn.bytes
            store(own, for: role, at: endpoint)
            return .waiting
        }
        var others = (role == .primary ? secondary : primary)[endpoint] ?? []
        if !others.isEmpty {
            let index = others.firstIndex { $0.localPort == syn.localPort } ?? 0
            let partner = others.remove(at: index)
            count -= 1
            store(others, for: role == .primary ? .secondary : .primary, at: endpoint)
            return role == .primary
                ? .paired(primary: syn, secondary: partner) : .paired(primary: partner, secondary: syn)
        }
        guard count < limit else { return .full }
        own.append(syn)
        count += 1
        store(own, for: role, at: endpoint)
        return .waiting
    }

    /// Removes and returns the SYNs that waited `timeoutMilliseconds` or longer.
    mutating func expired(
        now: MonotonicTime,
        timeoutMilliseconds: UInt64
    ) -> [(role: ServerRole, endpoint: Endpoint, syn: WaitingSYN)] {
        take { now.milliseconds(since: $0.since) >= timeoutMilliseconds }
    }

    /// Removes and returns every SYN waiting (the secondary failed: nobody's will come).
    mutating func removeAll() -> [(role: ServerRole, endpoint: Endpoint, syn: WaitingSYN)] {
        take { _ in true }
    }

    private mutating func take(
        where condition: (WaitingSYN) -> Bool
    ) -> [(role: ServerRole, endpoint: Endpoint, syn: WaitingSYN)] {
        var taken: [(role: ServerRole, endpoint: Endpoint, syn: WaitingSYN)] = []
        for role in [ServerRole.primary, .secondary] {
            for (endpoint, syns) in role == .primary ? primary : secondary {
                let leaving = syns.filter(condition)
                guard !leaving.isEmpty else { continue }
                taken += leaving.map { (role, endpoint, $0) }
                count -= leaving.count
                store(syns.filter { !condition($0) }, for: role, at: endpoint)
            }
        }
        return taken
    }

    private mutating func store(_ syns: [WaitingSYN], for role: ServerRole, at endpoint: Endpoint) {
        let value = syns.isEmpty ? nil : syns
        if role == .primary { primary[endpoint] = value } else { secondary[endpoint] = value }
    }
}
