/// Fuzzes the replication key file parser (`ReplicationKey(fileContents:)`, compiled into this
/// target with the rest of Sources/FTCPReplication): any text is a key or a `ReplicationKeyError`
/// whose line numbers are lines of the text; a key writes out as a file that reads back as the
/// same key, with the same fingerprint; the key never shows in its description; CRLF line ends
/// read like LF ones.
///
/// Input: the file's text (any bytes, decoded as UTF-8 with replacement characters).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeyFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    let lineCount = text.utf8.filter { $0 == 0x0A }.count + 1
    let result = parse(text)
    switch result {
    case let .success(key):
        let count = key.byteCount
        require((ReplicationKey.minimumByteCount...ReplicationKey.maximumByteCount).contains(count))
        guard case let .success(again) = parse(key.fileContents) else {
            fatalError("a key's own file contents do not parse")
        }
        require(again == key && again.fingerprint == key.fingerprint, "a key file does not read back the same key")
        let hex = key.symmetricKey.withUnsafeBytes { $0.prefix(8).map { byte in hexDigits(byte) }.joined() }
        require(
            !key.description.contains(hex) && !key.debugDescription.contains(hex),
            "the key shows in its description"
        )
        require(key.fingerprint.count == 16 && !key.fileContents.isEmpty)
    case let .failure(error):
        require(!error.description.isEmpty)
        switch error {
        case let .multipleKeyLines(first, second): require(1 <= first && first < second && second <= lineCount)
        case let .wrongHeader(line), let .missingKey(line): require((1...lineCount).contains(line))
        case let .unexpectedText(line, column), let .nonHexCharacter(line, column):
            require((1...lineCount).contains(line) && column >= 1)
        case let .oddHexLength(line, digits): require((1...lineCount).contains(line) && digits % 2 == 1)
        case let .tooShort(count, minimum): require(count < minimum)
        case let .tooLong(count, maximum): require(count > maximum)
        case .noKeyLine: break
        }
    }

    // CRLF line ends are the same file.
    var unix: [UInt8] = []
    for (index, byte) in bytes.enumerated() where !(byte == 0x0D && index + 1 < bytes.count && bytes[index + 1] == 0x0A)
    {
        unix.append(byte)
    }
    // (A line ending in two CRs keeps one: the parser takes off one, so the two texts differ.)
    let doubleCR = zip(bytes, bytes.dropFirst()).contains { $0 == 0x0D && $1 == 0x0D }
    if unix != bytes && !doubleCR {
        let unixResult = parse(String(decoding: unix, as: UTF8.self))
        require(unixResult == result, "CRLF key file reads as \(result), the same with LF as \(unixResult)")
    }

    // Raw key bytes: accepted exactly within the bounds.
    let raw = Result { () throws(ReplicationKeyError) in try ReplicationKey(bytes: bytes) }
    let inBounds = (ReplicationKey.minimumByteCount...ReplicationKey.maximumByteCount).contains(bytes.count)
    if case .success = raw { require(inBounds) } else { require(!inBounds) }
    return 0
}

private func parse(_ text: String) -> Result<ReplicationKey, ReplicationKeyError> {
    Result { () throws(ReplicationKeyError) in try ReplicationKey(fileContents: text) }
}

private func hexDigits(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}
