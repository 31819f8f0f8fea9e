/// Where the time of one request and its answer goes, hop by hop, from the bridges' latency
/// traces (``LatencyTrace``) and, when given, the client's: `ftcp-bridge latency-report`.
///
/// One connection carries one request at a time. A request is found at each hop by its
/// sequence number (the client's space, which both bridges see unchanged); an answer by its
/// sequence number in the secondary's space (the space the client sees), except in the
/// primary's own kernel, whose space differs, where it is found by its place in the order of
/// answers. Requests and answers are told from other segments by their payload length; a
/// retransmission (a sequence number seen before at that hop) is left out.
public struct LatencyBreakdown: Sendable {
    /// One interval between two hops, over every exchange that has both.
    public struct Interval: Equatable, Sendable {
        /// A short key for the result line (`client-primary`).
        public var key: String
        public var name: String
        public var count: Int
        public var p50Microseconds: Double
        public var p90Microseconds: Double
        public var p99Microseconds: Double
    }

    public var clientPort: UInt16
    /// Exchanges found at the primary's inbound queue.
    public var exchanges: Int
    public var intervals: [Interval]
    /// Of the exchanges with both, how many had the secondary's relay arrive after the primary's
    /// own answer (the secondary was the critical path).
    public var secondaryLater: Int
    public var bothAnswers: Int

    /// - Parameters:
    ///   - records: every record of both bridges' files, and of the client's.
    ///   - clientPort: the connection; nil takes the client's, else the busiest one at the primary.
    public init(
        records: [LatencyTrace.Record],
        clientPort: UInt16? = nil,
        requestBytes: Int = 64,
        answerBytes: Int = 59
    ) {
        var requestsByPort: [UInt16: Int] = [:]
        for record in records where record.hop == .primaryClientIn && record.payloadLength == requestBytes {
            requestsByPort[record.clientPort, default: 0] += 1
        }
        let busiest: UInt16 = requestsByPort.max { $0.value < $1.value }?.key ?? 0
        let fromClient: UInt16? = records.first { $0.hop == .clientSend }?.clientPort
        let port = clientPort ?? fromClient ?? busiest
        self.clientPort = port
        var hops: [LatencyTrace.Hop: [LatencyTrace.Record]] = [:]
        for record in records where record.clientPort == port {
            hops[record.hop, default: []].append(record)
        }
        /// The first sighting of each sequence number at a hop with that payload length, in time order.
        func firsts(_ hop: LatencyTrace.Hop, length: Int) -> [LatencyTrace.Record] {
            var seen: Set<UInt32> = []
            return (hops[hop] ?? []).filter { $0.payloadLength == length }.sorted { $0.nanoseconds < $1.nanoseconds }
                .filter { seen.insert($0.sequence).inserted }
        }
        func bySequence(_ hop: LatencyTrace.Hop, length: Int) -> [UInt32: UInt64] {
            Dictionary(firsts(hop, length: length).map { ($0.sequence, $0.nanoseconds) }) { first, _ in first }
        }
        let requests = firsts(.primaryClientIn, length: requestBytes)
        let answers = firsts(.secondaryKernelOut, length: answerBytes)
        let clientSends = (hops[.clientSend] ?? []).sorted { $0.sequence < $1.sequence }
        let clientReceives = (hops[.clientReceive] ?? []).sorted { $0.sequence < $1.sequence }
        let primaryAnswers = firsts(.primaryKernelOut, length: answerBytes)
        let captured = bySequence(.secondaryCaptured, length: requestBytes)
        let injected = bySequence(.secondaryInjected, length: requestBytes)
        let relayed = bySequence(.secondaryRelayed, length: answerBytes)
        let relayIn = bySequence(.primaryRelayIn, length: answerBytes)
        let sent = bySequence(.primarySent, length: answerBytes)

        var samples: [String: [Double]] = [:]
        var order: [(key: String, name: String)] = []
        func add(_ key: String, _ name: String, _ from: UInt64?, _ to: UInt64?) {
            if samples[key] == nil {
                order.append((key, name))
                samples[key] = []
            }
            guard let from, let to, to >= from else { return }
            samples[key, default: []].append(Double(to - from) / 1_000)
        }
        var later = 0
        var both = 0
        for (index, request) in requests.enumerated() {
            let answer = index < answers.count ? answers[index].sequence : nil
            let clientSend = index < clientSends.count ? clientSends[index].nanoseconds : nil
            let clientReceive = index < clientReceives.count ? clientReceives[index].nanoseconds : nil
            let primaryAnswer = index < primaryAnswers.count ? primaryAnswers[index].nanoseconds : nil
            let secondaryAnswer = index < answers.count ? answers[index].nanoseconds : nil
            let relayArrived = answer.flatMap { relayIn[$0] }
            let merged = answer.flatMap { sent[$0] }
            add("client-primary", "client to the primary's bridge", clientSend, request.nanoseconds)
            add("primary-application", "primary: kernel and application", request.nanoseconds, primaryAnswer)
            add("client-secondary", "client to the secondary's capture", clientSend, captured[request.sequence])
            add("secondary-injection", "secondary: injection", captured[request.sequence], injected[request.sequence])
            add(
                "secondary-application",
                "secondary: kernel and application",
                injected[request.sequence],
                secondaryAnswer
            )
            add("secondary-relay", "secondary: to the relay datagram", secondaryAnswer, answer.flatMap { relayed[$0] })
            add("channel", "channel: datagram to the primary's loop", answer.flatMap { relayed[$0] }, relayArrived)
            // Zero when the secondary's answer was there first.
            add(
                "primary-waits-secondary",
                "primary: waiting for the secondary's answer",
                primaryAnswer,
                relayArrived.map { max($0, primaryAnswer ?? $0) }
            )
            if let primaryAnswer, let relayArrived {
                both += 1
                if relayArrived > primaryAnswer { later += 1 }
            }
            let ready = [primaryAnswer, relayArrived].compactMap { $0 }.max()
            add("primary-merge-send", "primary: merge and send", ready, merged)
            add("primary-client", "primary's send to the client's read", merged, clientReceive)
            add("primary-request-answer", "request to answer at the primary's bridge", request.nanoseconds, merged)
            add("client-exchange", "whole exchange at the client", clientSend, clientReceive)
        }
        exchanges = requests.count
        secondaryLater = later
        bothAnswers = both
        intervals = order.compactMap { key, name in
            let sorted = (samples[key] ?? []).sorted()
            guard !sorted.isEmpty else { return nil }
            func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return Interval(
                key: key,
                name: name,
                count: sorted.count,
                p50Microseconds: percentile(0.5),
                p90Microseconds: percentile(0.9),
                p99Microseconds: percentile(0.99)
            )
        }
    }

    /// Reads trace files' lines (every line that is not a record is skipped).
    public static func records(fromText text: String) -> [LatencyTrace.Record] {
        text.split(separator: "\n").compactMap { LatencyTrace.Record(line: $0) }
    }

    /// The report: a table, then one `latency interval=… p50_us=…` line per interval.
    public var report: String {
        var lines = ["connection from client port \(clientPort): \(exchanges) exchanges"]
        let width = intervals.map(\.name.count).max() ?? 0
        for interval in intervals {
            let padded = interval.name.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append(
                "  \(padded)  p50 \(Self.format(interval.p50Microseconds)) µs  p90 \(Self.format(interval.p90Microseconds)) µs  p99 \(Self.format(interval.p99Microseconds)) µs  (\(interval.count))"
            )
        }
        if bothAnswers > 0 {
            lines.append(
                "  the secondary's answer came after the primary's in \(secondaryLater) of \(bothAnswers) exchanges"
            )
        }
        for interval in intervals {
            lines.append(
                "latency interval=\(interval.key) count=\(interval.count) p50_us=\(Self.format(interval.p50Microseconds)) p90_us=\(Self.format(interval.p90Microseconds)) p99_us=\(Self.format(interval.p99Microseconds))"
            )
        }
        lines.append("latency secondary_later=\(secondaryLater) both_answers=\(bothAnswers) exchanges=\(exchanges)")
        return lines.joined(separator: "\n")
    }

    private static func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return "\(Int(tenths) / 10).\(abs(Int(tenths) % 10))"
    }
}
