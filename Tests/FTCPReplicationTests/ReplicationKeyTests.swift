import FTCPReplication
import Testing

@Suite("Replication keys and their file format")
struct ReplicationKeyTests {
    static let hex64 = String(repeating: "0123456789abcdef", count: 4)

    @Test("a generated key survives its own file format")
    func fileRoundTrip() throws {
        let key = ReplicationKey.generate()
        #expect(key.byteCount == 32)
        let parsed = try ReplicationKey(fileContents: key.fileContents)
        #expect(parsed == key)
        #expect(parsed.fingerprint == key.fingerprint)
        #expect(ReplicationKey.generate() != key)
    }

    @Test("generation from a seeded generator is deterministic")
    func seededGeneration() {
        var first = SeededGenerator(seed: 1)
        var second = SeededGenerator(seed: 1)
        #expect(ReplicationKey.generate(using: &first) == ReplicationKey.generate(using: &second))
        var other = SeededGenerator(seed: 2)
        #expect(ReplicationKey.generate(using: &first) != ReplicationKey.generate(using: &other))
    }

    @Test("the file format accepts comments, blank lines, CRLF, indentation and upper case")
    func lenientParsing() throws {
        let text = "# a comment\r\n\r\n   \t# indented comment\n  ftcp-key-v1 \t\(Self.hex64.uppercased())  \r\n\n# end"
        let key = try ReplicationKey(fileContents: text)
        #expect(key == (try ReplicationKey(fileContents: "ftcp-key-v1 \(Self.hex64)")))
        #expect(
            key
                == (try ReplicationKey(
                    bytes: (0..<32).map { [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF][$0 % 8] }
                ))
        )
    }

    @Test(
        "each defect in a key file is named",
        arguments: [
            ("", ReplicationKeyError.noKeyLine),
            ("# only a comment\n\n", .noKeyLine),
            ("ftcp-key-v2 \(hex64)", .wrongHeader(line: 1)),
            ("# key:\n\(hex64)", .wrongHeader(line: 2)),
            ("ftcp-key-v1", .missingKey(line: 1)),
            ("ftcp-key-v1   ", .missingKey(line: 1)),
            ("ftcp-key-v1 \(hex64)0", .oddHexLength(line: 1, digits: 65)),
            ("ftcp-key-v1 \(hex64.dropLast())g", .nonHexCharacter(line: 1, column: 76)),
            ("ftcp-key-v1 0x\(hex64)", .nonHexCharacter(line: 1, column: 14)),
            ("ftcp-key-v1 \(hex64.prefix(62))", .tooShort(bytes: 31, minimum: 32)),
            ("ftcp-key-v1 \(String(repeating: "ab", count: 1_025))", .tooLong(bytes: 1_025, maximum: 1_024)),
            ("ftcp-key-v1 \(hex64) # trailing", .unexpectedText(line: 1, column: 78)),
            ("ftcp-key-v1 \(hex64)\nftcp-key-v1 \(hex64)", .multipleKeyLines(first: 1, second: 2)),
        ]
    )
    func parseErrors(text: String, expected: ReplicationKeyError) {
        #expect(throws: expected) { try ReplicationKey(fileContents: text) }
    }

    @Test("raw key bytes must be 32 to 1024 long")
    func byteLengths() throws {
        #expect(throws: ReplicationKeyError.tooShort(bytes: 16, minimum: 32)) {
            try ReplicationKey(bytes: [UInt8](repeating: 1, count: 16))
        }
        _ = try ReplicationKey(bytes: [UInt8](repeating: 1, count: 64))
    }

    @Test("descriptions never show the key")
    func redaction() throws {
        let key = try ReplicationKey(fileContents: "ftcp-key-v1 \(Self.hex64)")
        for text in [key.description, key.debugDescription, String(describing: key), String(reflecting: key), "\(key)"]
        {
            #expect(!text.contains("0123456789abcdef"), "\(text)")
            #expect(!text.contains("89abcdef01234567"), "\(text)")
            #expect(text.contains(key.fingerprint))
        }
        #expect(key.fingerprint.count == 16)
        #expect(key.fileContents.contains(Self.hex64))
    }
}
