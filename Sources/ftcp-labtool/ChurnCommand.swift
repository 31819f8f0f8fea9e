import ArgumentParser
import FTCPLinux
import Foundation
import Glibc

extension LabToolCommand {
    /// Connection churn at a fixed rate: many short connections, each a small request and its
    /// answer, opened on schedule whether or not earlier ones have finished (nonblocking sockets
    /// in one poll loop), so a server or bridge that falls behind shows as failures and latency.
    struct Churn: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "churn",
            abstract: """
                Open short connections to the demo server at RATE a second for SECONDS: each sends ECHO with \
                --echo-bytes bytes and QUIT, reads the echo and the server's close, and closes. Prints started, \
                completed and failed connections and p50/p99/max of a connection's time in microseconds.
                """
        )

        @Option(help: "The demo server's address and port.")
        var connect: String
        @Option(help: "New connections a second.")
        var rate: Int = 1000
        @Option(help: "How long to open new connections, in seconds.")
        var seconds: Double = 30
        @Option(help: "Bytes each connection sends to be echoed.")
        var echoBytes: Int = 1000
        @Option(help: "A connection not done after this many seconds counts as failed.")
        var connectionTimeout: Double = 10
        @OptionGroup var common: Common

        func validate() throws {
            guard (1...20_000).contains(rate) else { throw ValidationError("--rate must be between 1 and 20000") }
            guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be above 0, at most 600") }
            guard (1...60_000).contains(echoBytes) else { throw ValidationError("--echo-bytes: 1 to 60000") }
            guard common.timeoutSeconds > seconds + connectionTimeout else {
                throw ValidationError("--timeout-s must exceed --seconds plus --connection-timeout")
            }
        }

        /// One connection on its way.
        struct Attempt {
            var started: ContinuousClock.Instant
            var connected = false
            var received = 0
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

            let request = Array("ECHO \(String(repeating: "x", count: echoBytes))\nQUIT\n".utf8)
            // The echo with its line end, then "BYE total=0\n".
            let expected = echoBytes + 1 + "BYE total=0\n".utf8.count
            let total = Int(Double(rate) * seconds)
            let timeout = Duration.milliseconds(Int64(connectionTimeout * 1000))
            var attempts: [Int32: Attempt] = [:]
            var samples = LatencySamples(capacity: total)
            var started = 0
            var failed = 0
            var failures: [String: Int] = [:]
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 8)
            defer { buffer.deallocate() }
            let begin = ContinuousClock.now

            func finish(_ fd: Int32, failure: String?) {
                if let failure {
                    failed += 1
                    failures[failure, default: 0] += 1
                } else if let attempt = attempts[fd] {
                    samples.append(attempt.started.duration(to: .now))
                }
                attempts[fd] = nil
                close(fd)
            }

            while started < total || !attempts.isEmpty {
                guard ContinuousClock.now < deadline else {
                    for fd in Array(attempts.keys) { finish(fd, failure: "run timeout") }
                    break
                }
                let elapsed = begin.duration(to: .now)
                let due = min(total, Int(Double(rate) * (Double(elapsed / .milliseconds(1)) / 1000)))
                while started < due {
                    started += 1
                    let fd = socket(AF_INET, SocketType.stream | SocketType.nonblocking | SocketType.closeOnExec, 0)
                    guard fd >= 0 else {
                        failed += 1
                        failures["socket: \(String(cString: strerror(errno)))", default: 0] += 1
                        continue
                    }
                    var address = server.socketAddress
                    let result = withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    attempts[fd] = Attempt(started: .now)
                    if result != 0 && errno != EINPROGRESS {
                        finish(fd, failure: "connect: \(String(cString: strerror(errno)))")
                    }
                }
                var descriptors = attempts.map { fd, attempt in
                    pollfd(fd: fd, events: Int16(attempt.connected ? POLLIN : POLLOUT), revents: 0)
                }
                _ = poll(&descriptors, nfds_t(descriptors.count), 1)
                let now = ContinuousClock.now
                for descriptor in descriptors {
                    let fd = descriptor.fd
                    guard let attempt = attempts[fd] else { continue }
                    if descriptor.revents == 0 {
                        if attempt.started.duration(to: now) > timeout { finish(fd, failure: "timeout") }
                        continue
                    }
                    if !attempt.connected {
                        var error: Int32 = 0
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                        guard error == 0 else {
                            finish(fd, failure: "connect: \(String(cString: strerror(error)))")
                            continue
                        }
                        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        guard sent == request.count else {
                            finish(fd, failure: "send")
                            continue
                        }
                        attempts[fd]?.connected = true
                        continue
                    }
                    let count = recv(fd, buffer.baseAddress, buffer.count, 0)
                    if count > 0 {
                        attempts[fd]?.received += count
                    } else if count == 0 {
                        finish(fd, failure: attempt.received == expected ? nil : "short answer")
                    } else if errno != EAGAIN {
                        finish(fd, failure: "recv: \(String(cString: strerror(errno)))")
                    }
                }
            }
            let reasons = failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            if !reasons.isEmpty { FileHandle.standardError.write(Data("failures: \(reasons)\n".utf8)) }
            emit("started=\(started) completed=\(samples.count) failed=\(failed) \(samples.summary)")
        }
    }
}
