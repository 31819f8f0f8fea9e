import FTCPWire

/// Bytes from a hex string; whitespace and newlines are ignored.
func bytes(_ hex: String) -> [UInt8] {
    let digits = hex.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd number of hex digits in fixture")
    var result: [UInt8] = []
    result.reserveCapacity(digits.count / 2)
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        result.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Runs `body` on a validated view of a copy of `packet`, returning the
/// (possibly rewritten) bytes and whatever `body` returned.
func withTCPPacket<T>(
    _ packet: [UInt8],
    allowTrailingBytes: Bool = false,
    _ body: (TCPPacket) throws -> T
) throws -> (bytes: [UInt8], result: T) {
    var copy = packet
    let result = try copy.withUnsafeMutableBytes { buffer in
        try body(try TCPPacket(validating: buffer, allowTrailingBytes: allowTrailingBytes))
    }
    return (copy, result)
}

/// The error `TCPPacket(validating:)` throws for `packet`, or `nil` if it is valid.
func validationError(_ packet: [UInt8], allowTrailingBytes: Bool = false) -> WireError? {
    var copy = packet
    return copy.withUnsafeMutableBytes { buffer -> WireError? in
        do throws(WireError) {
            _ = try TCPPacket(validating: buffer, allowTrailingBytes: allowTrailingBytes)
            return nil
        } catch {
            return error
        }
    }
}

/// A small, seedable generator (SplitMix64) so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension TCPPacketFields {
    /// A random, valid packet: any field values, a random mix of options that
    /// fits the 40-byte option space, and a payload of up to `maxPayload` bytes.
    static func random(using rng: inout SplitMix64, maxPayload: Int = 1460) -> TCPPacketFields {
        var options: [TCPOption] = []
        var room = 40
        for _ in 0..<Int.random(in: 0...6, using: &rng) {
            let candidates: [TCPOption] = [
                .noOperation,
                .maximumSegmentSize(UInt16.random(in: 0...UInt16.max, using: &rng)),
                .windowScale(UInt8.random(in: 0...14, using: &rng)),
                .sackPermitted,
                .timestamps(
                    value: UInt32.random(in: 0...UInt32.max, using: &rng),
                    echoReply: UInt32.random(in: 0...UInt32.max, using: &rng)
                ),
                .sack(
                    (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                        let left = UInt32.random(in: 0...UInt32.max, using: &rng)
                        return SACKBlock(
                            left: SequenceNumber(left),
                            right: SequenceNumber(left &+ UInt32.random(in: 1...65535, using: &rng))
                        )
                    }
                ),
                .unknown(
                    kind: UInt8.random(in: 9...253, using: &rng),
                    data: (0..<Int.random(in: 0...6, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                ),
            ]
            let option = candidates.randomElement(using: &rng)!
            if option.encodedLength <= room {
                options.append(option)
                room -= option.encodedLength
            }
        }
        return TCPPacketFields(
            source: IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)),
            destination: IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)),
            sourcePort: UInt16.random(in: 0...UInt16.max, using: &rng),
            destinationPort: UInt16.random(in: 0...UInt16.max, using: &rng),
            sequenceNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &rng)),
            acknowledgmentNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &rng)),
            flags: TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng)),
            window: UInt16.random(in: 0...UInt16.max, using: &rng),
            urgentPointer: UInt16.random(in: 0...UInt16.max, using: &rng),
            options: options,
            payload: (0..<Int.random(in: 0...maxPayload, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng)
            },
            timeToLive: UInt8.random(in: 1...255, using: &rng),
            identification: UInt16.random(in: 0...UInt16.max, using: &rng),
            dontFragment: Bool.random(using: &rng),
            typeOfService: UInt8.random(in: 0...255, using: &rng)
        )
    }
}
