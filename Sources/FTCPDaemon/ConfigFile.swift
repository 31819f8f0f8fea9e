/// `/etc/ftcp/ftcp.conf`: one setting per line, `key = value`, where a key is a long option of
/// `ftcp-bridge primary|secondary` without its dashes (`address = 192.0.2.10`,
/// `hand-over-on-stop = true`). `#` starts a comment; blank lines are ignored. Options given
/// on the command line override the file.
///
/// Pure: the command line passes the keys it knows and what kind each is, and gets back the
/// arguments the file stands for, or an error naming the line.
public enum ConfigFile {
    public enum Kind: Sendable {
        /// Takes a value: `--key value`.
        case value
        /// Takes a value and may be given more than once.
        case repeatable
        /// A flag: `true` gives `--key`, `false` nothing.
        case flag
    }

    public struct Entry: Equatable, Sendable {
        public var line: Int
        public var key: String
        public var value: String
        /// The arguments this entry stands for.
        public var arguments: [String]
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var path: String
        public var line: Int
        public var message: String
        public var description: String { "\(path):\(line): \(message)" }
    }

    public static func parse(_ text: String, path: String, keys: [String: Kind]) throws(ParseError) -> [Entry] {
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        // "\r\n" is one Character, not "\n": a file saved with CRLF line ends is split at them too.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            // The delimiters are found among Unicode scalars, not Characters: a character that
            // joins the next one into a cluster (Grapheme_Cluster_Break=Prepend, U+113D1 for one)
            // would hide a '#', '=' or closing quote after it (found by the config-file fuzzer).
            let scalars = raw.unicodeScalars
            let line = String(scalars[..<(scalars.firstIndex(of: "#") ?? scalars.endIndex)])
            let trimmed = line.trimmingWhitespace
            guard !trimmed.isEmpty else { continue }
            guard let equals = trimmed.unicodeScalars.firstIndex(of: "=") else {
                throw ParseError(path: path, line: number, message: "expected 'key = value', found '\(trimmed)'")
            }
            let key = String(trimmed.unicodeScalars[..<equals]).trimmingWhitespace
            var value = String(trimmed.unicodeScalars[trimmed.unicodeScalars.index(after: equals)...])
                .trimmingWhitespace
            let valueScalars = value.unicodeScalars
            if valueScalars.count >= 2, valueScalars.first == "\"", valueScalars.last == "\"" {
                value = String(valueScalars.dropFirst().dropLast())
            }
            guard let kind = keys[key] else {
                let nearest = keys.keys.map { ($0, editDistance($0, key)) }.filter { $0.1 <= 2 }.min {
                    ($0.1, $0.0) < ($1.1, $1.0)
                }
                let hint = nearest.map { " (did you mean '\($0.0)'?)" } ?? ""
                throw ParseError(
                    path: path,
                    line: number,
                    message: """
                        unknown key '\(key)'\(hint): keys are the long options of `ftcp-bridge primary --help` without \
                        their dashes
                        """
                )
            }
            guard !value.isEmpty else { throw ParseError(path: path, line: number, message: "'\(key)' has no value") }
            if kind != .repeatable, let first = seen[key] {
                throw ParseError(path: path, line: number, message: "'\(key)' is set again (first on line \(first))")
            }
            seen[key] = number
            let arguments: [String]
            switch kind {
            case .value, .repeatable:
                arguments = ["--\(key)", value]
            case .flag:
                switch value.lowercased() {
                case "true", "yes", "on", "1": arguments = ["--\(key)"]
                case "false", "no", "off", "0": arguments = []
                default:
                    throw ParseError(
                        path: path,
                        line: number,
                        message: "'\(key)' is a switch: true or false, not '\(value)'"
                    )
                }
            }
            entries.append(Entry(line: number, key: key, value: value, arguments: arguments))
        }
        return entries
    }

    /// Levenshtein distance: how many letters to insert, delete or replace to turn one into the other.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }

    /// The arguments to parse: the file's first, then the command line's, without the file's
    /// settings the command line gives too (it overrides them; a repeatable one as a whole).
    public static func merge(_ entries: [Entry], commandLine: [String]) -> [String] {
        let given = Set(
            commandLine.compactMap { argument -> String? in
                guard argument.hasPrefix("--") else { return nil }
                return String(argument.dropFirst(2).prefix { $0 != "=" })
            }
        )
        return entries.filter { !given.contains($0.key) }.flatMap(\.arguments) + commandLine
    }
}

extension String {
    /// The text without white space (Unicode's, scalar by scalar) at either end.
    var trimmingWhitespace: String {
        var text = Substring(self).unicodeScalars
        while let first = text.first, first.properties.isWhitespace { text.removeFirst() }
        while let last = text.last, last.properties.isWhitespace { text.removeLast() }
        return String(text)
    }
}
