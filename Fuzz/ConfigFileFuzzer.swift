/// Fuzzes the configuration file parser (`ConfigFile`, Sources/FTCPDaemon/ConfigFile.swift,
/// compiled into this target on its own): any text either parses into entries the command line
/// can use, or is an error that names a line of the file. What parses must come back the same
/// when written out again, a file saved with CRLF line ends must read like the same file with
/// LF ends, and `merge` must keep the command line's settings over the file's.
///
/// Input: the file's text (any bytes, decoded as UTF-8 with replacement characters).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    let lineCount = bytes.filter { $0 == 0x0A }.count + 1

    let result = parse(text)
    switch result {
    case let .success(entries):
        checkEntries(entries, lineCount: lineCount)
        checkRewritten(entries)
        checkMerge(entries, commandLine: ["--peer", "192.0.2.9", "--service-address=192.0.2.20", "--verbose"])
    case let .failure(error):
        require(error.path == path && (1...lineCount).contains(error.line), "an error names no line: \(error)")
        require(!error.message.isEmpty && error.description.hasPrefix("\(path):\(error.line): "))
    }

    // CRLF line ends are the same file.
    let unixBytes = bytes.withoutCarriageReturnsBeforeNewlines
    if unixBytes != bytes {
        let unix = parse(String(decoding: unixBytes, as: UTF8.self))
        require(unix == result, "CRLF file parses as \(result), the same with LF as \(unix)")
    }

    // The suggestion for an unknown key comes from a metric: check it on two pieces of the input.
    let half = bytes.count / 2
    let a = String(decoding: bytes[..<half].prefix(24), as: UTF8.self)
    let b = String(decoding: bytes[half...].prefix(24), as: UTF8.self)
    let distance = ConfigFile.editDistance(a, b)
    require(distance == ConfigFile.editDistance(b, a), "edit distance is not symmetric")
    require(ConfigFile.editDistance(a, a) == 0 && distance <= max(a.count, b.count))
    require(distance >= abs(a.count - b.count) && (distance == 0) == (a == b))
    return 0
}

private let path = "/etc/ftcp/ftcp.conf"

/// Keys of each kind, as the command line declares them (a few of the real ones).
private let keys: [String: ConfigFile.Kind] = [
    "address": .value, "peer": .value, "port": .value, "key-file": .value, "interface": .value,
    "service-address": .repeatable, "protected-port": .repeatable,
    "hand-over-on-stop": .flag, "verbose": .flag,
]

private func parse(_ text: String) -> Result<[ConfigFile.Entry], ConfigFile.ParseError> {
    do throws(ConfigFile.ParseError) {
        return .success(try ConfigFile.parse(text, path: path, keys: keys))
    } catch {
        return .failure(error)
    }
}

private func checkEntries(_ entries: [ConfigFile.Entry], lineCount: Int) {
    var seen: Set<String> = []
    var previousLine = 0
    for entry in entries {
        require(entry.line > previousLine && entry.line <= lineCount, "entries out of line order")
        previousLine = entry.line
        guard let kind = keys[entry.key] else { fatalError("an entry of unknown key '\(entry.key)'") }
        require(!entry.value.isEmpty, "an entry without a value")
        require(!entry.value.unicodeScalars.contains("\n"), "a value spans lines")
        switch kind {
        case .value, .repeatable:
            require(entry.arguments == ["--\(entry.key)", entry.value])
        case .flag:
            require(entry.arguments == [] || entry.arguments == ["--\(entry.key)"])
        }
        if kind != .repeatable {
            require(seen.insert(entry.key).inserted, "'\(entry.key)' accepted twice")
        }
    }
}

/// The entries written out as a file, one per line, parse to the same keys, values and arguments.
private func checkRewritten(_ entries: [ConfigFile.Entry]) {
    let text = entries.map { "\($0.key) = \"\($0.value)\"" }.joined(separator: "\n")
    guard case let .success(again) = parse(text) else {
        fatalError("the parsed entries written out again do not parse: \(text.debugDescription)")
    }
    require(again.count == entries.count)
    for (entry, reread) in zip(entries, again) {
        require(entry.key == reread.key && entry.value == reread.value && entry.arguments == reread.arguments)
    }
}

/// The merged arguments: the file's first, then the command line as it was, without the file's
/// settings of a key the command line gives.
private func checkMerge(_ entries: [ConfigFile.Entry], commandLine: [String]) {
    let merged = ConfigFile.merge(entries, commandLine: commandLine)
    require(merged.suffix(commandLine.count) == commandLine[...], "merge lost the command line")
    let fromFile = merged.dropLast(commandLine.count)
    let overridden: Set<String> = ["peer", "service-address", "verbose"]
    require(fromFile == entries.filter { !overridden.contains($0.key) }.flatMap(\.arguments)[...])
}

extension [UInt8] {
    /// The bytes with each CR that comes right before an LF removed.
    fileprivate var withoutCarriageReturnsBeforeNewlines: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        for (index, byte) in enumerated() {
            if byte == 0x0D, index + 1 < count, self[index + 1] == 0x0A { continue }
            result.append(byte)
        }
        return result
    }
}
