/// Why a replication key, or the text of a key file, was refused.
///
/// Line and column numbers count from 1. No case ever carries key material, so the messages are
/// safe to log.
public enum ReplicationKeyError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The text has no key line (only blank lines and comments).
    case noKeyLine
    /// The text has more than one key line.
    case multipleKeyLines(first: Int, second: Int)
    /// A line that is not blank or a comment does not start with the `ftcp-key-v1` header.
    case wrongHeader(line: Int)
    /// The header is not followed by the hexadecimal key.
    case missingKey(line: Int)
    /// Something follows the key on its line.
    case unexpectedText(line: Int, column: Int)
    /// The key has an odd number of hexadecimal digits.
    case oddHexLength(line: Int, digits: Int)
    /// A character of the key is not a hexadecimal digit.
    case nonHexCharacter(line: Int, column: Int)
    /// The key is shorter than the minimum.
    case tooShort(bytes: Int, minimum: Int)
    /// The key is longer than the maximum.
    case tooLong(bytes: Int, maximum: Int)

    public var description: String {
        let expected = "expected one line `\(ReplicationKey.fileHeader) <hexadecimal key>`"
        switch self {
        case .noKeyLine:
            return "no key line (\(expected); lines starting with # are comments)"
        case let .multipleKeyLines(first, second):
            return "line \(second): a second key line (the first is line \(first)); keep exactly one"
        case let .wrongHeader(line):
            return
                "line \(line): does not start with `\(ReplicationKey.fileHeader)` (\(expected); lines starting with # are comments)"
        case let .missingKey(line):
            return "line \(line): the key is missing after `\(ReplicationKey.fileHeader)`"
        case let .unexpectedText(line, column):
            return "line \(line), column \(column): unexpected text after the key"
        case let .oddHexLength(line, digits):
            return "line \(line): the key has an odd number of hexadecimal digits (\(digits))"
        case let .nonHexCharacter(line, column):
            return "line \(line), column \(column): not a hexadecimal digit"
        case let .tooShort(bytes, minimum):
            return
                "the key is \(bytes) bytes long; at least \(minimum) bytes (\(minimum * 2) hexadecimal digits) are needed"
        case let .tooLong(bytes, maximum):
            return "the key is \(bytes) bytes long; at most \(maximum) bytes are allowed"
        }
    }
}
