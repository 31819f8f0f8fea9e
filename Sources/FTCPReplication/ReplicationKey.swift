import Crypto

/// The secret both bridges share to authenticate the replication channel (HMAC-SHA256).
///
/// A key is at least 32 random bytes. It lives in a key file, whose text format is:
///
/// ```
/// # comments and blank lines are ignored
/// ftcp-key-v1 6f1c…(at least 64 hexadecimal digits)…
/// ```
///
/// exactly one key line: the header `ftcp-key-v1`, white space, the key in hexadecimal (either
/// case). ``fileContents`` writes that format and ``init(fileContents:)`` reads it.
///
/// The key never appears in ``description``: logs show a ``fingerprint`` instead, which lets an
/// operator check that both bridges hold the same key without revealing it.
///
/// The type is `@unchecked Sendable` because swift-crypto's `SymmetricKey` lacks the annotation:
/// it is an immutable value (a `let` around storage that is never written after creation), so
/// sharing it between concurrent readers is safe.
public struct ReplicationKey: Equatable, @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The first word of a key line, naming the format version.
    public static let fileHeader = "ftcp-key-v1"
    /// The fewest key bytes accepted (and the number ``generate()`` makes).
    public static let minimumByteCount = 32
    /// The most key bytes accepted.
    public static let maximumByteCount = 1024

    /// The key in the form swift-crypto uses.
    let symmetricKey: SymmetricKey

    /// A key made of `bytes`, which must be between ``minimumByteCount`` and ``maximumByteCount``
    /// long and should be random.
    public init(bytes: some Collection<UInt8>) throws(ReplicationKeyError) {
        let count = bytes.count
        guard count >= Self.minimumByteCount else {
            throw .tooShort(bytes: count, minimum: Self.minimumByteCount)
        }
        guard count <= Self.maximumByteCount else {
            throw .tooLong(bytes: count, maximum: Self.maximumByteCount)
        }
        symmetricKey = SymmetricKey(data: Array(bytes))
    }

    /// Parses the text of a key file (the format is in the type's description).
    public init(fileContents: String) throws(ReplicationKeyError) {
        let bytes = try Self.parse(Array(fileContents.utf8))
        try self.init(bytes: bytes)
    }

    /// A new key of ``minimumByteCount`` bytes drawn from `generator`, which must be
    /// cryptographically secure outside of tests.
    public static func generate<R: RandomNumberGenerator>(using generator: inout R) -> ReplicationKey {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(minimumByteCount)
        while bytes.count < minimumByteCount {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < minimumByteCount {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        // The length is fixed and valid, so this cannot fail.
        guard let key = try? ReplicationKey(bytes: bytes) else {
            preconditionFailure("a \(minimumByteCount)-byte key is always valid")
        }
        return key
    }

    /// A new key from the system's cryptographically secure generator.
    public static func generate() -> ReplicationKey {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// The key's length in bytes.
    public var byteCount: Int { symmetricKey.bitCount / 8 }

    /// The text of a key file holding this key, ending in a newline: what `ftcp-bridge keygen`
    /// prints. It contains the secret.
    public var fileContents: String {
        let hex = symmetricKey.withUnsafeBytes { Self.hex($0) }
        return """
            # ftcp replication key (fingerprint \(fingerprint)).
            # Secret: keep this file mode 0600, owned by root, identical on both bridges.
            \(Self.fileHeader) \(hex)

            """
    }

    /// The first 8 bytes, in hexadecimal, of a SHA-256 hash of the key under a fixed label: the
    /// same for the same key, and useless for recovering it.
    public var fingerprint: String {
        var hasher = SHA256()
        hasher.update(data: Array("ftcp replication key fingerprint v1".utf8))
        symmetricKey.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        let digest = Array(hasher.finalize())
        return Self.hex(digest.prefix(8))
    }

    public var description: String {
        "ReplicationKey(\(byteCount) bytes, fingerprint \(fingerprint))"
    }

    public var debugDescription: String { description }

    // MARK: - Key file text

    /// Finds the single key line in `text` and decodes its hexadecimal key.
    private static func parse(_ text: [UInt8]) throws(ReplicationKeyError) -> [UInt8] {
        var key: (line: Int, bytes: [UInt8])?
        var lineNumber = 0
        for rawLine in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = rawLine[...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard let first = line.firstIndex(where: { !isSpace($0) }) else { continue }
            if line[first] == UInt8(ascii: "#") { continue }
            if let previous = key {
                throw .multipleKeyLines(first: previous.line, second: lineNumber)
            }
            key = (lineNumber, try parseKeyLine(line, from: first, lineNumber: lineNumber))
        }
        guard let key else { throw .noKeyLine }
        return key.bytes
    }

    /// Decodes one key line whose first non-space byte is at `start`.
    private static func parseKeyLine(
        _ line: ArraySlice<UInt8>,
        from start: Int,
        lineNumber: Int
    ) throws(ReplicationKeyError) -> [UInt8] {
        let column = { (index: Int) in index - line.startIndex + 1 }
        let headerEnd = line[start...].firstIndex(where: isSpace) ?? line.endIndex
        guard line[start..<headerEnd].elementsEqual(fileHeader.utf8) else {
            throw .wrongHeader(line: lineNumber)
        }
        guard let hexStart = line[headerEnd...].firstIndex(where: { !isSpace($0) }) else {
            throw .missingKey(line: lineNumber)
        }
        let hexEnd = line[hexStart...].firstIndex(where: isSpace) ?? line.endIndex
        if let extra = line[hexEnd...].firstIndex(where: { !isSpace($0) }) {
            throw .unexpectedText(line: lineNumber, column: column(extra))
        }
        let digits = line[hexStart..<hexEnd]
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var high: UInt8?
        for index in digits.indices {
            guard let nibble = hexValue(digits[index]) else {
                throw .nonHexCharacter(line: lineNumber, column: column(index))
            }
            if let pending = high {
                bytes.append(pending << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw .oddHexLength(line: lineNumber, digits: digits.count) }
        return bytes
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
