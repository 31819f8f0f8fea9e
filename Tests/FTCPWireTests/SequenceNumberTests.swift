import FTCPWire
import Testing

@Suite("Sequence numbers compare modulo 2^32 (RFC 9293 §3.4)")
struct SequenceNumberTests {
    @Test("a number just past the wrap is later than one just before it")
    func wrapOrdering() {
        let beforeWrap = SequenceNumber(0xFFFF_FFF0)
        let afterWrap = beforeWrap + 0x20
        #expect(afterWrap.rawValue == 0x10)
        #expect(beforeWrap < afterWrap)
        #expect(afterWrap > beforeWrap)
        #expect(!(afterWrap < beforeWrap))
        #expect(beforeWrap.distance(to: afterWrap) == 0x20)
        #expect(afterWrap.distance(to: beforeWrap) == -0x20)
        #expect(SequenceNumber.later(beforeWrap, afterWrap) == afterWrap)
        #expect(SequenceNumber.earlier(beforeWrap, afterWrap) == beforeWrap)
    }

    @Test("equal numbers are neither before nor after each other")
    func equality() {
        let n = SequenceNumber(42)
        #expect(n <= n && n >= n)
        #expect(!(n < n) && !(n > n))
    }

    @Test("subtracting past zero wraps to the top of the space")
    func subtractWraps() {
        #expect((SequenceNumber(5) - 10).rawValue == 0xFFFF_FFFB)
    }

    @Test("offset between spaces is the raw modulo difference, and adding it back maps exactly")
    func offsetRoundTrip() {
        let isnPrimary = SequenceNumber(100)
        let isnSecondary = SequenceNumber(0xFFFF_FF00)
        let delta = isnPrimary.offset(from: isnSecondary)
        #expect(delta == 0x164)
        #expect(isnSecondary + delta == isnPrimary)
        #expect(isnPrimary - delta == isnSecondary)
    }

    @Test("half-open range membership works across the wrap")
    func rangeAcrossWrap() {
        let start = SequenceNumber(0xFFFF_FFFE)
        let end = start + 4
        #expect(SequenceNumber(0xFFFF_FFFF).isIn(from: start, upTo: end))
        #expect(SequenceNumber(1).isIn(from: start, upTo: end))
        #expect(!SequenceNumber(2).isIn(from: start, upTo: end))
        #expect(!SequenceNumber(0xFFFF_FFFD).isIn(from: start, upTo: end))
    }

    @Test("ordering agrees with 64-bit arithmetic for random pairs less than 2^31 apart")
    func randomPairs() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<10_000 {
            let base = UInt64.random(in: 0...UInt64(UInt32.max), using: &rng)
            let step = UInt64.random(in: 1..<(1 << 31), using: &rng)
            let a = SequenceNumber(UInt32(truncatingIfNeeded: base))
            let b = SequenceNumber(UInt32(truncatingIfNeeded: base + step))
            #expect(a < b)
            #expect(a.distance(to: b) == Int32(step))
        }
    }
}

@Suite("IPv4 addresses")
struct IPv4AddressTests {
    @Test("dotted quads parse and print back", arguments: ["10.80.0.1", "0.0.0.0", "255.255.255.255", "192.168.1.20"])
    func roundTrip(text: String) {
        #expect(IPv4Address(text)?.description == text)
    }

    @Test(
        "anything but four decimal octets is rejected",
        arguments: [
            "", "10.80.0", "10.80.0.1.2", "256.1.1.1", "a.b.c.d", "10..0.1", "1.2.3.-4", " 1.2.3.4", "1.2.3.0004",
        ]
    )
    func rejects(text: String) {
        #expect(IPv4Address(text) == nil)
    }
}
