import Glibc

/// Runs a program to its end and collects what it wrote (stdout and stderr together):
/// posix_spawn and waitpid, nothing more. Foundation's `Process` polls for the child's end,
/// which costs tens of milliseconds per command; the bridges run iptables while a takeover
/// holds every protected connection still.
enum ChildProcess {
    struct Result {
        var status: Int32
        var output: String
    }

    /// - Throws: ``SystemCallError`` when the program cannot be started.
    static func run(_ executable: String, _ arguments: [String]) throws(SystemCallError) -> Result {
        var descriptors: [Int32] = [-1, -1]
        try systemCall("pipe") { pipe(&descriptors) }
        let (reading, writing) = (descriptors[0], descriptors[1])
        // Neither end may leak into other children; the spawned one gets its copies by dup2.
        _ = fcntl(reading, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writing, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writing, 1)
        posix_spawn_file_actions_adddup2(&actions, writing, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, executable, &actions, nil, argv, environ)
        close(writing)
        guard spawned == 0 else {
            close(reading)
            throw SystemCallError(call: "posix_spawn(\(executable))", errno: spawned)
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(reading, $0.baseAddress, $0.count) }
            if count > 0 { output += buffer[0..<count]; continue }
            if count < 0 && errno == EINTR { continue }
            break
        }
        close(reading)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: exitStatus, output: String(decoding: output, as: UTF8.self))
    }
}
