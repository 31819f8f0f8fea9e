import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Merging the two servers' bytes (paper §3.4)")
struct MergeTests {
    typealias S = PrimaryScenario

    /// Δ = 30: the secondary's ISN is 0 and the primary's 30, so S's byte n is P's byte n + 30.
    func figure2Scenario() throws -> S {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        // Bytes 1–22 go out first: both kernels produced them.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: numberedBytes(1...22)))
        let first = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: numberedBytes(1...22)))
        #expect(first.packetsToClient.map(\.payload) == [numberedBytes(1...22)])
        return scenario
    }

    @Test("Figure 2: P's 51–54 (S's 21–24), then S's 23–26: one segment with 23–24, 25–26 wait in S's queue")
    func figure2() throws {
        var scenario = try figure2Scenario()
        let afterP = try scenario.primary(S.fromServer(.primary, seq: 51, ack: 1001, payload: numberedBytes(21...24)))
        // 21–22 were sent already, so that part is a retransmission and goes out at once (§4);
        // 23–24 wait for the secondary.
        #expect(afterP.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(21)])
        #expect(afterP.packetsToClient.map(\.payload) == [numberedBytes(21...22)])
        #expect(scenario.status?.queuedPrimaryBytes == 2)

        let afterS = try scenario.secondary(
            S.fromServer(.secondary, seq: 23, ack: 1001, payload: numberedBytes(23...26))
        )
        #expect(afterS.packetsToClient.count == 1)
        let merged = try #require(afterS.packetsToClient.first)
        #expect(merged.sequenceNumber == SequenceNumber(23))
        #expect(merged.payload == numberedBytes(23...24))
        #expect(merged.acknowledgmentNumber == SequenceNumber(1001))
        #expect(merged.source == S.serviceAddress && merged.destination == S.clientAddress)
        #expect(scenario.status?.queuedPrimaryBytes == 0)
        #expect(scenario.status?.queuedSecondaryBytes == 2)
    }

    @Test("segment boundaries differ: bytes are matched, not segments")
    func differentBoundaries() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 10_000, secondaryISN: 500)
        try scenario.primary(S.fromServer(.primary, seq: 10_001, ack: 1001, payload: numberedBytes(1...3)))
        try scenario.primary(S.fromServer(.primary, seq: 10_004, ack: 1001, payload: numberedBytes(4...10)))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 501, ack: 1001, payload: numberedBytes(1...10)))
        #expect(out.packetsToClient.map(\.payload) == [numberedBytes(1...10)])
        #expect(out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(501)])
    }

    @Test("the client sees the smaller ACK and the smaller window edge of the two")
    func smallerAckAndWindow() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        // The client sent 1001–1100; P has all of it, S only up to 1050.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 800, payload: numberedBytes(1...5)))
        let out = try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1051, window: 900, payload: numberedBytes(1...5))
        )
        let merged = try #require(out.packetsToClient.first)
        #expect(merged.acknowledgmentNumber == SequenceNumber(1051))
        // Edges: P 1101 + 800 = 1901, S 1051 + 900 = 1951 → 1901, so the window is 1901 − 1051.
        #expect(merged.window == 850)
    }

    @Test("when the smaller ACK advances with no data to carry, a pure ACK goes out at once")
    func eagerPureAck() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        let p = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101))
        #expect(p.packetsToClient.isEmpty, "S has not acknowledged 1001–1100 yet")
        let s = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1101))
        #expect(s.packetsToClient.count == 1)
        #expect(s.packetsToClient.first?.acknowledgmentNumber == SequenceNumber(1101))
        #expect(s.packetsToClient.first?.payload == [])
        #expect(s.packetsToClient.first?.sequenceNumber == SequenceNumber(1))
        // P acknowledging what it already acknowledged, while ahead of nothing, is a duplicate
        // ACK of the merged view and goes out as one (it drives the client's fast retransmit).
        let again = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 1000))
        #expect(again.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1101)])
    }

    @Test("a duplicate ACK from the server that is ahead is not the client's business")
    func duplicateFromLeaderSuppressed() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 1000))
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, window: 1000))
        let duplicateFromLeader = try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1101, window: 1000))
        #expect(duplicateFromLeader.packetsToClient.isEmpty)
        let duplicateFromLagger = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, window: 1000))
        #expect(duplicateFromLagger.packetsToClient.map(\.acknowledgmentNumber) == [SequenceNumber(1001)])
    }

    @Test("SACK: bytes the leading server holds below its own ACK count as held")
    func sackWithLeaderBeyond() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1460), .sackPermitted],
            primaryOptions: [.maximumSegmentSize(1460), .sackPermitted],
            secondaryOptions: [.maximumSegmentSize(1460), .sackPermitted]
        )
        // S has all of 1001–1300; P missed 1001–1100.
        try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1301, window: 1000))
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 1000))
        let out = try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                window: 1000,
                options: [
                    .noOperation, .noOperation,
                    .sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1301))]),
                ]
            )
        )
        let dupAck = try #require(out.packetsToClient.first)
        #expect(dupAck.acknowledgmentNumber == SequenceNumber(1001))
        #expect(
            dupAck.options == [
                .noOperation, .noOperation, .sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1301))]),
            ]
        )
    }

    @Test("the advertised right edge never moves left")
    func edgeNeverShrinks() throws {
        var scenario = S()
        try scenario.handshake(primaryISN: 30, secondaryISN: 0)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 1000))
        let first = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, window: 1000, payload: [1]))
        // Only a window update (edge 2001): byte 1 waits for P's copy.
        #expect(first.packetsToClient.map(\.window) == [1000])
        #expect(first.packetsToClient.flatMap(\.payload).isEmpty)
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 1000, payload: [1]))
        // Both now shrink their windows to 100: the bridge keeps the edge at 2001.
        try scenario.primary(S.fromServer(.primary, seq: 32, ack: 1001, window: 100, payload: [2]))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 2, ack: 1001, window: 100, payload: [2]))
        #expect(out.packetsToClient.first?.window == 1000)
    }

    @Test("with window scaling, the merged window is the smaller edge in the secondary's shift")
    func windowScaleTranslation() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(7)],
            primaryOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(7)],
            secondaryOptions: [.maximumSegmentSize(1460), .noOperation, .windowScale(9)]
        )
        // P: 100 << 7 = 12,800 bytes; S: 50 << 9 = 25,600 bytes → 12,800 bytes = 25 in S's shift.
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, window: 100, payload: [7]))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, window: 50, payload: [7]))
        #expect(out.packetsToClient.first?.window == 25)
    }

    @Test("timestamps: the client sees S's clock; P's TSval is moved by Δts, the client's TSecr moved back")
    func timestampTranslation() throws {
        var scenario = try timestampHandshake()
        #expect(scenario.status?.timestampDelta == 60_000)
        let (delivered, _) = try scenario.client(
            S.fromClient(seq: 1001, ack: 1, options: [.timestamps(value: 9, echoReply: 40_003)])
        )
        #expect(delivered?.options == [.timestamps(value: 9, echoReply: 100_003)])
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.timestamps(value: 100_010, echoReply: 9)],
                payload: [1]
            )
        )
        let out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                options: [.timestamps(value: 40_011, echoReply: 9)],
                payload: [1]
            )
        )
        #expect(
            out.packetsToClient.first?.options == [
                .noOperation, .noOperation, .timestamps(value: 40_011, echoReply: 9),
            ]
        )
    }

    /// A handshake with timestamps: Δ = 30, Δts = 60,000 (P's clock at 100,000, S's at 40,000).
    func timestampHandshake() throws -> S {
        var scenario = S()
        try scenario.client(
            S.fromClient(
                seq: 1000,
                flags: [.syn],
                options: [.maximumSegmentSize(1460), .timestamps(value: 5, echoReply: 0)]
            )
        )
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 30,
                ack: 1001,
                flags: [.syn, .ack],
                options: [.maximumSegmentSize(1460), .timestamps(value: 100_000, echoReply: 5)]
            )
        )
        try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 0,
                ack: 1001,
                flags: [.syn, .ack],
                options: [.maximumSegmentSize(1460), .timestamps(value: 40_000, echoReply: 5)]
            )
        )
        return scenario
    }

    /// `timestampHandshake`, and the client's ACK of it (TSval 9).
    func timestampScenario() throws -> S {
        var scenario = try timestampHandshake()
        try scenario.client(S.fromClient(seq: 1001, ack: 1, options: [.timestamps(value: 9, echoReply: 40_000)]))
        return scenario
    }

    @Test("S serving alone (P's replica lost) never sets the client's TSval back below P's newer clock")
    func timestampNeverGoesBackWhenSecondaryAlone() throws {
        var scenario = try timestampScenario()
        // P sends 1–4 at 100,040 (40,040 in S's clock), S at 40,020: the client gets 40,040.
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.timestamps(value: 100_040, echoReply: 9)],
                payload: [1, 2, 3, 4]
            )
        )
        let merged = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                options: [.timestamps(value: 40_020, echoReply: 9)],
                payload: [1, 2, 3, 4]
            )
        )
        #expect(merged.packetsToClient.first?.timestampValue == 40_040)
        // P's kernel resets (its application died): S goes on alone. Its next segment, or one it
        // resends when asked to relay whole, carries an older clock than the client last saw.
        try scenario.primary(S.fromServer(.primary, seq: 35, ack: 1001, flags: [.rst, .ack]))
        let alone = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 5,
                ack: 1001,
                options: [.timestamps(value: 40_025, echoReply: 9)],
                payload: [5, 6]
            )
        )
        #expect(alone.packetsToClient.map(\.payload) == [[5, 6]])
        #expect(
            alone.packetsToClient.first?.timestampValue == 40_040,
            "not S's 40,025: the client's PAWS would drop it"
        )
    }

    @Test("a late segment of S (a relay resent after a loss) never sets the client's TSval back (PAWS)")
    func timestampNeverGoesBack() throws {
        var scenario = try timestampScenario()
        // S sends 1–2 at 40,020 and 3–4 at 40,030; the datagram with 1–2 is lost and resent, and
        // arrives after 3–4. P sent 1–4 at 100,010 (40,010 in S's clock).
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.timestamps(value: 100_010, echoReply: 9)],
                payload: [1, 2, 3, 4]
            )
        )
        var out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 3,
                ack: 1001,
                options: [.timestamps(value: 40_030, echoReply: 9)],
                payload: [3, 4]
            )
        )
        #expect(out.packetsToClient.isEmpty, "3–4 wait for 1–2")
        out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                options: [.timestamps(value: 40_020, echoReply: 9)],
                payload: [1, 2]
            )
        )
        #expect(out.packetsToClient.map(\.payload) == [[1, 2, 3, 4]])
        #expect(out.packetsToClient.first?.timestampValue == 40_030, "the newest clock S has shown, not the late one")
        // Both servers' next bytes carry clocks older than what the client was sent (S's 40,025,
        // P's 40,020 in S's clock): the client still sees 40,030.
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 35,
                ack: 1001,
                options: [.timestamps(value: 100_020, echoReply: 9)],
                payload: [5]
            )
        )
        out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 5,
                ack: 1001,
                options: [.timestamps(value: 40_025, echoReply: 9)],
                payload: [5]
            )
        )
        #expect(out.packetsToClient.map(\.payload) == [[5]])
        #expect(out.packetsToClient.first?.timestampValue == 40_030)
    }

    @Test("a retransmission of P filling the client's hole carries P's fresh clock, not S's old one")
    func retransmissionCarriesTheFreshClock() throws {
        var scenario = try timestampScenario()
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.timestamps(value: 100_010, echoReply: 9)],
                payload: [1, 2]
            )
        )
        var out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                options: [.timestamps(value: 40_010, echoReply: 9)],
                payload: [1, 2]
            )
        )
        #expect(out.packetsToClient.first?.timestampValue == 40_010)
        // The segment was lost on the way to the client; two seconds later P's kernel retransmits it
        // (S, backed off, has sent nothing since). The client will echo this TSval; both kernels
        // take their RTT from it.
        out = try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.timestamps(value: 102_010, echoReply: 9)],
                payload: [1, 2]
            )
        )
        #expect(out.packetsToClient.map(\.payload) == [[1, 2]])
        #expect(out.packetsToClient.first?.timestampValue == 42_010)
    }

    @Test("the client's TSecr is the echo of the server whose acknowledgment it gets")
    func echoOfTheServerBehind() throws {
        var scenario = try timestampScenario()
        // The client sends 1001–1002 (TSval 20) and 1003–1004 (TSval 30). S gets both; P's link
        // loses 1001–1002, so P acknowledges nothing yet (its dupack echoes 9, the newest in-order
        // TSval it has).
        try scenario.client(
            S.fromClient(seq: 1001, ack: 1, options: [.timestamps(value: 20, echoReply: 40_000)], payload: [1, 2])
        )
        try scenario.client(
            S.fromClient(seq: 1003, ack: 1, options: [.timestamps(value: 30, echoReply: 40_000)], payload: [3, 4])
        )
        try scenario.secondary(
            S.fromServer(.secondary, seq: 1, ack: 1005, options: [.timestamps(value: 40_010, echoReply: 30)])
        )
        try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1001, options: [.timestamps(value: 100_011, echoReply: 9)])
        )
        // Seconds later the client's retransmission (TSval 2,000) reaches P, which acknowledges
        // everything: the client's ACK moves, and its RTT sample is taken from this TSecr.
        let out = try scenario.primary(
            S.fromServer(.primary, seq: 31, ack: 1005, options: [.timestamps(value: 102_000, echoReply: 2_000)])
        )
        try #require(out.packetsToClient.count == 1)
        #expect(out.packetsToClient[0].acknowledgmentNumber == SequenceNumber(1005))
        #expect(out.packetsToClient[0].timestampEchoReply == 2_000, "S's echo of 30 would say the RTT was seconds")
    }

    @Test(
        "SACK: the client's blocks reach P moved by Δ; the servers' blocks reach the client only where both hold the bytes"
    )
    func sackTranslation() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1460), .sackPermitted],
            primaryOptions: [.maximumSegmentSize(1460), .sackPermitted],
            secondaryOptions: [.maximumSegmentSize(1460), .sackPermitted]
        )
        let block = SACKBlock(left: SequenceNumber(11), right: SequenceNumber(21))
        let (delivered, _) = try scenario.client(
            S.fromClient(seq: 1001, ack: 1, options: [.noOperation, .noOperation, .sack([block])])
        )
        #expect(
            delivered?.options == [
                .noOperation, .noOperation, .sack([SACKBlock(left: SequenceNumber(41), right: SequenceNumber(51))]),
            ]
        )
        // Client data 1001–1100 lost, 1101–1300 arrived: P holds 1101–1300, S only 1101–1200.
        try scenario.primary(
            S.fromServer(
                .primary,
                seq: 31,
                ack: 1001,
                options: [.sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1301))])]
            )
        )
        let out = try scenario.secondary(
            S.fromServer(
                .secondary,
                seq: 1,
                ack: 1001,
                options: [.sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1201))])]
            )
        )
        let dupAck = try #require(out.packetsToClient.first)
        #expect(dupAck.acknowledgmentNumber == SequenceNumber(1001))
        #expect(
            dupAck.options == [
                .noOperation, .noOperation, .sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1201))]),
            ]
        )
    }

    @Test("sequence numbers wrap past 2^32 in mid-stream on both sides")
    func wrapAround() throws {
        var scenario = S()
        // S's stream wraps after 0xFF bytes, P's after 0x0F.
        try scenario.handshake(primaryISN: 0xFFFF_FFF0, secondaryISN: 0xFFFF_FF00)
        let data = (0..<600).map { UInt8(truncatingIfNeeded: $0 * 13) }
        try scenario.primary(S.fromServer(.primary, seq: 0xFFFF_FFF1, ack: 1001, payload: Array(data[0..<300])))
        try scenario.primary(S.fromServer(.primary, seq: 0xFFFF_FFF1 &+ 300, ack: 1001, payload: Array(data[300...])))
        var sent: [UInt8] = []
        var sequence: [SequenceNumber] = []
        for (start, end) in [(0, 200), (200, 600)] {
            let out = try scenario.secondary(
                S.fromServer(
                    .secondary,
                    seq: 0xFFFF_FF01 &+ UInt32(start),
                    ack: 1001,
                    payload: Array(data[start..<end])
                )
            )
            sent += out.packetsToClient.flatMap(\.payload)
            sequence += out.packetsToClient.map(\.sequenceNumber)
        }
        #expect(sent == data)
        #expect(sequence == [SequenceNumber(0xFFFF_FF01), SequenceNumber(0xFFFF_FF01 &+ 200)])
        // The client acknowledges past the wrap; P's kernel sees it in its own space.
        let (delivered, _) = try scenario.client(S.fromClient(seq: 1001, ack: 0xFFFF_FF01 &+ 600))
        #expect(delivered?.acknowledgmentNumber == SequenceNumber(0xFFFF_FFF1 &+ 600))
    }

    @Test("a merged run longer than the client's MSS is cut into segments of at most MSS bytes")
    func segmentation() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(600)]
        )
        let data = (0..<1250).map { UInt8(truncatingIfNeeded: $0) }
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: data))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: data))
        #expect(out.packetsToClient.map(\.payload.count) == [600, 600, 50])
        #expect(
            out.packetsToClient.map(\.sequenceNumber) == [SequenceNumber(1), SequenceNumber(601), SequenceNumber(1201)]
        )
        #expect(out.packetsToClient.map { $0.flags.contains(.psh) } == [false, false, true])
    }

    @Test(
        "while both servers SACK the client's data, merged segments shrink by the SACK option so each fits the client's MSS"
    )
    func segmentationMakesRoomForSACK() throws {
        var scenario = S()
        let options: [TCPOption] = [.maximumSegmentSize(100), .sackPermitted]
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: options,
            primaryOptions: options,
            secondaryOptions: options
        )
        // Client data 1001–1100 lost, 1101–1200 arrived at both servers: both SACK it.
        let hole = [
            TCPOption.noOperation, .noOperation,
            .sack([SACKBlock(left: SequenceNumber(1101), right: SequenceNumber(1201))]),
        ]
        let data = (0..<250).map { UInt8(truncatingIfNeeded: $0) }
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, options: hole, payload: data))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, options: hole, payload: data))
        // One SACK block with its two NOPs takes 12 bytes: 88 payload bytes per segment.
        #expect(out.packetsToClient.map(\.payload.count) == [88, 88, 74])
        #expect(out.packetsToClient.allSatisfy { $0.tcpHeaderLength - 20 + $0.payload.count <= 100 })
        #expect(out.packetsToClient.allSatisfy { !$0.options.isEmpty })
        #expect(out.packetsToClient.flatMap(\.payload) == data)
    }

    @Test("a server on a smaller MTU than the client's MSS bounds the merged segments too")
    func segmentationHonoursTheServersMSS() throws {
        var scenario = S()
        try scenario.handshake(
            primaryISN: 30,
            secondaryISN: 0,
            clientOptions: [.maximumSegmentSize(1460)],
            primaryOptions: [.maximumSegmentSize(1360)],
            secondaryOptions: [.maximumSegmentSize(1460)]
        )
        let data = (0..<3000).map { UInt8(truncatingIfNeeded: $0) }
        try scenario.primary(S.fromServer(.primary, seq: 31, ack: 1001, payload: data))
        let out = try scenario.secondary(S.fromServer(.secondary, seq: 1, ack: 1001, payload: data))
        #expect(out.packetsToClient.map(\.payload.count) == [1360, 1360, 280])
    }
}

@Suite("Comparing the servers' bytes")
struct ByteComparisonTests {
    @Test("equal arrays have no difference; the first differing byte is found in the 8-byte body and in the tail")
    func firstDifference() {
        let base = (0..<37).map { UInt8($0) }
        #expect(ByteComparison.firstDifference(base, base) == nil)
        #expect(ByteComparison.firstDifference([], []) == nil)
        for position in [0, 7, 8, 31, 32, 36] {
            var other = base
            other[position] ^= 0x40
            #expect(ByteComparison.firstDifference(base, other) == position)
        }
        #expect(ByteComparison.firstDifference(base, Array(base[0..<20])) == 20)
    }
}

extension TCPPacketFields {
    /// The TSecr the segment carries, if any.
    fileprivate var timestampEchoReply: UInt32? {
        for option in options {
            if case let .timestamps(_, echoReply) = option { return echoReply }
        }
        return nil
    }

    /// The TSval the segment carries, if any.
    fileprivate var timestampValue: UInt32? {
        for option in options {
            if case let .timestamps(value, _) = option { return value }
        }
        return nil
    }
}
