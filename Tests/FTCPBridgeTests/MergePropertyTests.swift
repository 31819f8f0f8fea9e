import FTCPWire
import Testing

@testable import FTCPBridge

/// Random exchanges checked against the invariants the paper's design rests on.
@Suite("Merge invariants under random segmentation, interleaving and loss")
struct MergePropertyTests {
    typealias S = PrimaryScenario

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One server kernel's segment: a slice of the stream, the ACK it carries, maybe the FIN.
    struct KernelSegment {
        var role: ServerRole
        var offset: Int
        var length: Int
        var ack: UInt32
        var fin: Bool
    }

    func segments(of stream: [UInt8], role: ServerRole, clientISN: UInt32, using rng: inout Generator)
        -> [KernelSegment]
    {
        var result: [KernelSegment] = []
        var offset = 0
        var ack: UInt32 = 1
        while offset < stream.count {
            let length = min(stream.count - offset, Int.random(in: 1...700, using: &rng))
            ack += UInt32.random(in: 0...50, using: &rng)
            result.append(KernelSegment(role: role, offset: offset, length: length, ack: clientISN &+ ack, fin: false))
            offset += length
        }
        result.append(KernelSegment(role: role, offset: stream.count, length: 0, ack: clientISN &+ ack, fin: true))
        return result
    }

    @Test(
        "bytes arrive intact and in full; nothing goes out before both servers produced it; no ACK exceeds either server's",
        arguments: 0..<40
    )
    func invariants(seed: Int) throws {
        var rng = Generator(state: UInt64(seed) &* 7919 &+ 17)
        var scenario = S()
        let clientISN = UInt32.random(in: 0...UInt32.max, using: &rng)
        let primaryISN = UInt32.random(in: 0...UInt32.max, using: &rng)
        let secondaryISN = seed % 4 == 0 ? UInt32.max - 100 : UInt32.random(in: 0...UInt32.max, using: &rng)
        try scenario.handshake(clientISN: clientISN, primaryISN: primaryISN, secondaryISN: secondaryISN)
        let stream = (0..<Int.random(in: 1...6000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let fromP = segments(of: stream, role: .primary, clientISN: clientISN, using: &rng)
        let fromS = segments(of: stream, role: .secondary, clientISN: clientISN, using: &rng)

        var covered = [Bool](repeating: false, count: stream.count)
        var finReceived = false
        var producedByP = 0, producedByS = 0
        var maxAckP = clientISN &+ 1, maxAckS = clientISN &+ 1
        let lossRate = Double(seed % 3) * 0.15

        func check(_ output: BridgeOutput) {
            for packet in output.packetsToClient {
                let ack = packet.acknowledgmentNumber
                #expect(ack <= SequenceNumber(maxAckS) && ack <= SequenceNumber(maxAckP), "ACK beyond a server's own")
                let start = Int(SequenceNumber(secondaryISN &+ 1).distance(to: packet.sequenceNumber))
                for (index, byte) in packet.payload.enumerated() {
                    let position = start + index
                    #expect(position >= 0 && position < stream.count)
                    guard position >= 0 && position < stream.count else { continue }
                    #expect(byte == stream[position], "wrong byte at \(position)")
                    #expect(
                        position < producedByP && position < producedByS,
                        "byte \(position) went out before both produced it"
                    )
                    covered[position] = true
                }
                if packet.flags.contains(.fin) {
                    #expect(start + packet.payload.count == stream.count)
                    finReceived = true
                }
            }
        }

        func deliver(_ segment: KernelSegment) throws {
            let payload = Array(stream[segment.offset..<(segment.offset + segment.length)])
            let flags: TCPFlags = segment.fin ? [.fin, .ack] : [.ack]
            if segment.role == .primary {
                producedByP = max(producedByP, segment.offset + segment.length)
                maxAckP = SequenceNumber.later(SequenceNumber(maxAckP), SequenceNumber(segment.ack)).rawValue
                check(
                    try scenario.primary(
                        S.fromServer(
                            .primary,
                            seq: primaryISN &+ 1 &+ UInt32(segment.offset),
                            ack: segment.ack,
                            flags: flags,
                            window: 5000,
                            payload: payload
                        )
                    )
                )
            } else {
                producedByS = max(producedByS, segment.offset + segment.length)
                maxAckS = SequenceNumber.later(SequenceNumber(maxAckS), SequenceNumber(segment.ack)).rawValue
                check(
                    try scenario.secondary(
                        S.fromServer(
                            .secondary,
                            seq: secondaryISN &+ 1 &+ UInt32(segment.offset),
                            ack: segment.ack,
                            flags: flags,
                            window: 5000,
                            payload: payload
                        )
                    )
                )
            }
        }

        // First transmission: a random interleaving, S's segments lost on the channel at random.
        var p = fromP[...], s = fromS[...]
        while !p.isEmpty || !s.isEmpty {
            let takeP = s.isEmpty || (!p.isEmpty && Bool.random(using: &rng))
            if takeP {
                try deliver(p.removeFirst())
            } else {
                let segment = s.removeFirst()
                if Double.random(in: 0..<1, using: &rng) >= lossRate { try deliver(segment) }
            }
        }
        // Retransmission timeouts: both kernels send everything the client has not acknowledged, until done.
        var rounds = 0
        while (covered.contains(false) || !finReceived) && rounds < 20 {
            for segment in fromS + fromP { try deliver(segment) }
            rounds += 1
        }
        #expect(!covered.contains(false), "some bytes never reached the client")
        #expect(finReceived)
        #expect(rounds <= 1, "one retransmission round fills every hole")
        #expect(scenario.status?.statistics.divergences == 0)
    }
}
