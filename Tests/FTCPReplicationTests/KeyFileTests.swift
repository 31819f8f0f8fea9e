import FTCPLinux
import FTCPReplication
import Glibc
import Testing

@Suite("Loading the key file")
struct KeyFileTests {
    /// A fresh private directory for one test's files.
    func temporaryDirectory() throws -> String {
        var template = Array("/tmp/ftcp-keyfile-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemCallError(call: "mkdtemp", errno: errno) }
        return String(cString: made)
    }

    /// Writes `text` to `path` with permissions `mode`.
    func writeFile(_ text: String, to path: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw SystemCallError(call: "open", errno: errno) }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else {
            throw SystemCallError(call: "write", errno: errno)
        }
        guard fchmod(descriptor, mode) == 0 else { throw SystemCallError(call: "fchmod", errno: errno) }
    }

    func cleanUp(_ directory: String, files: [String]) {
        for file in files { unlink(file) }
        rmdir(directory)
    }

    @Test("a 0600 key file loads")
    func privateFile() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/replication.key"
        defer { cleanUp(directory, files: [path]) }
        let key = ReplicationKey.generate()
        try writeFile(key.fileContents, to: path, mode: 0o600)
        #expect(try KeyFile.load(path: path) == key)
    }

    @Test(
        "a key file others can read or write is refused with the chmod that fixes it",
        arguments: [0o644 as mode_t, 0o640, 0o604, 0o602, 0o620, 0o660, 0o601]
    )
    func openPermissions(mode: mode_t) throws {
        let directory = try temporaryDirectory()
        let path = directory + "/replication.key"
        defer { cleanUp(directory, files: [path]) }
        try writeFile(ReplicationKey.generate().fileContents, to: path, mode: mode)
        #expect(throws: KeyFileError.permissionsTooOpen(path: path, mode: UInt32(mode))) {
            try KeyFile.load(path: path)
        }
        let message = KeyFileError.permissionsTooOpen(path: path, mode: UInt32(mode)).description
        #expect(message.contains("chmod 600 \(path)"))
        #expect(message.contains("mode 0\(String(mode, radix: 8))"))
    }

    @Test("a missing key file is refused with the keygen command")
    func missingFile() throws {
        let directory = try temporaryDirectory()
        defer { cleanUp(directory, files: []) }
        let path = directory + "/absent.key"
        #expect(throws: KeyFileError.missing(path: path)) { try KeyFile.load(path: path) }
        #expect(KeyFileError.missing(path: path).description.contains("ftcp-bridge keygen > \(path)"))
    }

    @Test("a parse error names the file and the line")
    func parseError() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/replication.key"
        defer { cleanUp(directory, files: [path]) }
        try writeFile("# comment\nftcp-key-v1 abc\n", to: path, mode: 0o600)
        var caught: KeyFileError?
        do { _ = try KeyFile.load(path: path) } catch { caught = error }
        #expect(caught == .invalidKey(path: path, .oddHexLength(line: 2, digits: 3)))
        let message = caught?.description ?? ""
        #expect(message.contains(path) && message.contains("line 2"))
    }

    @Test("a directory is not a key file")
    func directoryRefused() throws {
        let directory = try temporaryDirectory()
        defer { cleanUp(directory, files: []) }
        #expect(throws: KeyFileError.notRegularFile(path: directory)) { try KeyFile.load(path: directory) }
    }

    @Test("a path with a space is quoted in the suggested command")
    func quoting() {
        let message = KeyFileError.permissionsTooOpen(path: "/etc/ftcp/my key", mode: 0o644).description
        #expect(message.contains("chmod 600 '/etc/ftcp/my key'"))
    }

    @Test("a file owned by another user is refused", .enabled(if: geteuid() == 0, "chown needs root"))
    func foreignOwner() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/replication.key"
        defer { cleanUp(directory, files: [path]) }
        try writeFile(ReplicationKey.generate().fileContents, to: path, mode: 0o600)
        #expect(chown(path, 4_242, 4_242) == 0)
        #expect(throws: KeyFileError.wrongOwner(path: path, owner: 4_242, expected: 0)) {
            try KeyFile.load(path: path)
        }
    }
}
