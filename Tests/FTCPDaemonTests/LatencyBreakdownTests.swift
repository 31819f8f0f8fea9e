import Testing

@testable import FTCPDaemon

@Suite("Where a request's time goes, from the bridges' latency traces")
struct LatencyBreakdownTests {
    typealias Record = LatencyTrace.Record

    /// Exchange `k` on client port 40000, at k ms: the request is 64 bytes at client sequence
    /// 1000 + 64k, the answer 59 bytes at 5000 + 59k in the secondary's space (the client's)
    /// and 9000 + 59k in the primary's own. Times in µs from the exchange's start; the
    /// primary's own answer at `primaryAnswer`, the secondary's relay arriving at 80.
    static func exchange(_ k: Int, primaryAnswer: UInt64) -> [Record] {
        let base = UInt64(k) * 1_000
        let request = UInt32(1_000 + 64 * k)
        let answer = UInt32(5_000 + 59 * k)
        let sent = base + max(80, primaryAnswer) + 10
        func at(_ hop: LatencyTrace.Hop, _ sequence: UInt32, _ length: Int, _ microseconds: UInt64) -> Record {
            Record(
                hop: hop,
                clientPort: 40_000,
                sequence: sequence,
                payloadLength: length,
                nanoseconds: microseconds * 1_000
            )
        }
        return [
            at(.clientSend, UInt32(k), 64, base),
            at(.secondaryCaptured, request, 64, base + 20),
            at(.primaryClientIn, request, 64, base + 30),
            at(.secondaryInjected, request, 64, base + 35),
            at(.secondaryKernelOut, answer, 59, base + 60),
            at(.secondaryRelayed, answer, 59, base + 70),
            at(.primaryRelayIn, answer, 59, base + 80),
            at(.primaryKernelOut, UInt32(9_000 + 59 * k), 59, base + primaryAnswer),
            at(.primarySent, answer, 59, sent),
            at(.clientReceive, UInt32(k), 59, sent + 10),
        ]
    }

    static func p50(_ breakdown: LatencyBreakdown, _ key: String) -> Double? {
        breakdown.intervals.first { $0.key == key }?.p50Microseconds
    }

    @Test("two exchanges, the secondary later in the first and the primary in the second")
    func twoExchanges() {
        var records = Self.exchange(0, primaryAnswer: 65) + Self.exchange(1, primaryAnswer: 120)
        // Not part of any exchange: the HELLO before them (10 bytes), a retransmission of the
        // first request long after, another connection's request.
        records.append(
            Record(hop: .primaryClientIn, clientPort: 40_000, sequence: 990, payloadLength: 10, nanoseconds: 1)
        )
        records.append(
            Record(
                hop: .primaryClientIn,
                clientPort: 40_000,
                sequence: 1_000,
                payloadLength: 64,
                nanoseconds: 1_500_000
            )
        )
        records.append(
            Record(hop: .primaryClientIn, clientPort: 40_001, sequence: 7, payloadLength: 64, nanoseconds: 400)
        )
        let breakdown = LatencyBreakdown(records: records.shuffled())
        #expect(breakdown.clientPort == 40_000)
        #expect(breakdown.exchanges == 2)
        #expect(Self.p50(breakdown, "client-primary") == 30)
        #expect(Self.p50(breakdown, "client-secondary") == 20)
        #expect(Self.p50(breakdown, "secondary-injection") == 15)
        #expect(Self.p50(breakdown, "secondary-application") == 25)
        #expect(Self.p50(breakdown, "secondary-relay") == 10)
        #expect(Self.p50(breakdown, "channel") == 10)
        #expect(Self.p50(breakdown, "primary-merge-send") == 10)
        #expect(Self.p50(breakdown, "primary-client") == 10)
        // 35 and 90 µs; 15 and 0 µs (the primary's answer came last); 100 and 140 µs.
        #expect(breakdown.intervals.first { $0.key == "primary-application" }?.p50Microseconds == 90)
        let waits = breakdown.intervals.first { $0.key == "primary-waits-secondary" }
        #expect(waits?.count == 2)
        #expect(waits?.p50Microseconds == 15)
        #expect(Self.p50(breakdown, "client-exchange") == 140)
        #expect(breakdown.secondaryLater == 1 && breakdown.bothAnswers == 2)
        #expect(breakdown.report.contains("latency interval=channel count=2 p50_us=10.0"))
    }

    @Test("the bridges' traces alone: the busiest connection, no interval that needs the client")
    func withoutTheClient() {
        let records = (0..<3).flatMap { Self.exchange($0, primaryAnswer: 65) }.filter {
            $0.hop != .clientSend && $0.hop != .clientReceive
        }
        let breakdown = LatencyBreakdown(records: records)
        #expect(breakdown.clientPort == 40_000 && breakdown.exchanges == 3)
        #expect(!breakdown.intervals.contains { $0.key == "client-primary" || $0.key == "client-exchange" })
        #expect(Self.p50(breakdown, "primary-request-answer") == 60)
    }

    @Test("a trace file's lines read back; anything else in it is skipped")
    func fileLines() {
        let record = Record(
            hop: .secondaryRelayed,
            clientPort: 51_000,
            sequence: 4_294_967_295,
            payloadLength: 1_420,
            nanoseconds: 12_345
        )
        let text = [LatencyTrace.header, record.line, "secondary.relayed,51000,1,2", "nowhere,1,1,1,1", ""]
            .joined(separator: "\n")
        #expect(LatencyBreakdown.records(fromText: text) == [record])
    }
}
