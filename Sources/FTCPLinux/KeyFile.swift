import FTCPReplication
import Glibc

/// Loads the replication key from its file, refusing a file that others could read or replace.
///
/// The key authenticates everything the bridges tell each other, so a file that group or others
/// can read or write, or that is owned by a user other than root or the bridge's own, is refused
/// with the command that fixes it. The file's text format is described on ``ReplicationKey``.
public enum KeyFile {
    /// The largest key file read; a key file is a few hundred bytes.
    public static let maximumFileSize = 64 * 1024

    /// Reads, checks and parses the key file at `path`.
    ///
    /// The checks are made on the opened file (`fstat`), not on the path, so the file cannot be
    /// swapped between the check and the read. A symbolic link is followed; its target is checked.
    public static func load(path: String) throws(KeyFileError) -> ReplicationKey {
        let descriptor: Int32
        do {
            descriptor = try systemCall("open(\(path))") {
                open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
            }
        } catch {
            if error.errno == ENOENT { throw .missing(path: path) }
            throw .unreadable(path: path, error)
        }
        defer { close(descriptor) }

        var status = stat()
        do {
            try systemCall("fstat(\(path))") { fstat(descriptor, &status) }
        } catch {
            throw .unreadable(path: path, error)
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path: path) }
        let mode = UInt32(status.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw .permissionsTooOpen(path: path, mode: mode) }
        let owner = UInt32(status.st_uid)
        let effectiveUser = UInt32(geteuid())
        guard owner == 0 || owner == effectiveUser else {
            throw .wrongOwner(path: path, owner: owner, expected: effectiveUser)
        }
        guard status.st_size <= maximumFileSize else {
            throw .tooLarge(path: path, size: Int(status.st_size), limit: maximumFileSize)
        }

        // Read up to one byte more than the limit, in case the file grew after fstat.
        var contents = [UInt8](repeating: 0, count: maximumFileSize + 1)
        var filled = 0
        while filled < contents.count {
            let outcome = contents.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) -> Int in
                    try systemCall("read(\(path))") {
                        read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
                    }
                }
            }
            let got: Int
            switch outcome {
            case let .success(count): got = count
            case let .failure(error): throw .unreadable(path: path, error)
            }
            if got == 0 { break }
            filled += got
        }
        guard filled <= maximumFileSize else {
            throw .tooLarge(path: path, size: filled, limit: maximumFileSize)
        }
        guard let text = String(validating: contents[0..<filled], as: UTF8.self) else {
            throw .notText(path: path)
        }
        do {
            return try ReplicationKey(fileContents: text)
        } catch {
            throw .invalidKey(path: path, error)
        }
    }
}

/// Why ``KeyFile/load(path:)`` refused a key file. Each description names the file and, where
/// there is one, the command that fixes the problem; none contains key material.
public enum KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// There is no file at the path.
    case missing(path: String)
    /// Opening, inspecting or reading the file failed.
    case unreadable(path: String, SystemCallError)
    /// The path names a directory, device, FIFO or socket.
    case notRegularFile(path: String)
    /// Group or others have some access to the file (`mode` holds its permission bits).
    case permissionsTooOpen(path: String, mode: UInt32)
    /// The file belongs to a user who is neither root nor the bridge's effective user.
    case wrongOwner(path: String, owner: UInt32, expected: UInt32)
    /// The file is larger than ``KeyFile/maximumFileSize``.
    case tooLarge(path: String, size: Int, limit: Int)
    /// The file is not UTF-8 text.
    case notText(path: String)
    /// The text is not a valid key file.
    case invalidKey(path: String, ReplicationKeyError)

    public var description: String {
        switch self {
        case let .missing(path):
            let quoted = shellQuoted(path)
            return "replication key file \(path) does not exist; create it on one bridge with "
                + "`umask 077; ftcp-bridge keygen > \(quoted)` and copy it to the other bridge"
        case let .unreadable(path, error):
            return "cannot read replication key file \(path): \(error)"
        case let .notRegularFile(path):
            return "replication key file \(path) is not a regular file"
        case let .permissionsTooOpen(path, mode):
            let octal = String(mode, radix: 8)
            let padded = String(repeating: "0", count: max(0, 4 - octal.count)) + octal
            return "replication key file \(path) is accessible by group or others (mode \(padded)); "
                + "the key must stay secret: run `chmod 600 \(shellQuoted(path))`"
        case let .wrongOwner(path, owner, expected):
            let fix = expected == 0 ? "chown root" : "chown \(expected)"
            return "replication key file \(path) is owned by uid \(owner), who could replace the key; "
                + "run `\(fix) \(shellQuoted(path))`"
        case let .tooLarge(path, size, limit):
            return "replication key file \(path) is \(size) bytes, more than the \(limit) a key file can be"
        case let .notText(path):
            return "replication key file \(path) is not UTF-8 text"
        case let .invalidKey(path, error):
            return "replication key file \(path): \(error)"
        }
    }
}

/// `path` as one word for a POSIX shell: unchanged if it holds only characters that need no
/// quoting, otherwise single-quoted.
private func shellQuoted(_ path: String) -> String {
    let plain =
        !path.isEmpty
        && path.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "/._-+:,@%".utf8.contains(byte)
            }
        }
    if plain { return path }
    var quoted = "'"
    for character in path {
        quoted += character == "'" ? "'\\''" : String(character)
    }
    return quoted + "'"
}
