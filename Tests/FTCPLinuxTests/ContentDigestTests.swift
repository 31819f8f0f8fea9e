import FTCPDemo
import Testing

/// The demo server's SHA-256 against the FIPS 180-4 / NIST example vectors.
@Suite struct SHA256Tests {
    @Test func emptyMessage() {
        #expect(ContentDigest.hexDigest(of: []) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func abc() {
        #expect(
            ContentDigest.hexDigest(of: Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
    }

    @Test func fourHundredFortyEightBitMessage() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(message.count * 8 == 448)
        #expect(
            ContentDigest.hexDigest(of: message) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
    }

    @Test func aMillionAs() {
        #expect(
            ContentDigest.hexDigest(of: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        )
    }

    @Test func aMillionAsFedInOddPieces() {
        var hasher = ContentDigest()
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 997)
        var fed = 0
        var size = 1
        while fed < 1_000_000 {
            let count = min(size, 1_000_000 - fed, piece.count)
            piece.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            fed += count
            size = size % 131 + 7
        }
        #expect(
            ContentDigest.hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        )
    }

    /// Messages whose padding lands on each side of the 56-byte boundary.
    @Test(arguments: [55, 56, 63, 64, 65, 119, 120])
    func splitFeedingMatchesOneShot(length: Int) {
        let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let oneShot = ContentDigest.hexDigest(of: message)
        for split in 0...length {
            var hasher = ContentDigest()
            hasher.update(message[..<split])
            hasher.update(message[split...])
            #expect(ContentDigest.hex(hasher.finalize()) == oneShot)
        }
    }
}
