import FTCPWire
import Testing

@testable import FTCPBridge

@Suite("Digest claims: the secondary's pieces waiting for the primary's bytes")
struct DigestClaimsTests {
    static func claim(_ start: UInt32, _ length: Int) -> DigestClaims.Claim {
        .init(start: SequenceNumber(start), length: length, digest: PayloadDigest(high: UInt64(start), low: 0))
    }

    @Test("claims keep sequence order whatever order they come in; an overlapping one is refused")
    func order() {
        var claims = DigestClaims()
        let kept = [200, 0, 100].map { claims.insert(Self.claim($0, 100)) }
        #expect(kept == [true, true, true])
        let overlapping = claims.insert(Self.claim(150, 100))
        #expect(!overlapping, "overlaps 100..<200 and 200..<300")
        let inside = claims.insert(Self.claim(50, 10))
        #expect(!inside, "inside 0..<100")
        let empty = claims.insert(Self.claim(300, 0))
        #expect(!empty, "no bytes")
        #expect(claims.count == 3 && claims.first?.start == SequenceNumber(0))
        #expect(claims.highestEnd == SequenceNumber(300))
        #expect(claims.nextStart(after: SequenceNumber(0)) == SequenceNumber(100))
    }

    @Test("advancing drops what was sent and counts the pieces sent only in part")
    func advance() {
        var claims = DigestClaims()
        for start in stride(from: UInt32(0), to: 500, by: 100) {
            let kept = claims.insert(Self.claim(start, 100))
            #expect(kept)
        }
        let straddling = claims.advance(to: SequenceNumber(250))
        #expect(straddling == 1, "200..<300 was sent in part")
        #expect(claims.first?.start == SequenceNumber(300))
        let none = claims.advance(to: SequenceNumber(400))
        #expect(none == 0)
        #expect(claims.count == 1)
    }

    @Test("across the wrap of sequence space, and through many takes (the store compacts itself)")
    func wrapAndCompaction() {
        var claims = DigestClaims()
        var next = SequenceNumber(0xFFFF_0000)
        var expected = next
        for round in 0..<3_000 {
            let kept = claims.insert(.init(start: next, length: 100, digest: PayloadDigest(high: 0, low: 0)))
            #expect(kept)
            next = next + 100
            if round % 3 != 0 {
                #expect(claims.first?.start == expected)
                claims.removeFirst()
                expected = expected + 100
            }
        }
        #expect(claims.count == 1_000)
        #expect(claims.first?.start == expected)
        #expect(claims.highestEnd == next)
    }

    @Test("a connection holds at most the limit")
    func limit() {
        var claims = DigestClaims()
        for index in 0..<DigestClaims.limit { _ = claims.insert(Self.claim(UInt32(index) * 10, 10)) }
        #expect(claims.count == DigestClaims.limit)
        let over = claims.insert(Self.claim(UInt32(DigestClaims.limit) * 10, 10))
        #expect(!over)
    }
}
