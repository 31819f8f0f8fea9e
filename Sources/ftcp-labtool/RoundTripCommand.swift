import ArgumentParser
import FTCPLinux
import Glibc

extension LabToolCommand {
    /// Times small request/response exchanges on one connection to the demo server: an `ECHO`
    /// line of 64 bytes out, the same text back, one at a time.
    struct RoundTrip: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "round-trip",
            abstract:
                "Send COUNT 64-byte ECHO requests one after another on one connection; print p50/p99/max round trip in microseconds."
        )

        @Option(help: "The server's address and port.")
        var connect: String
        @Option(help: "How many exchanges.")
        var count: Int = 1000
        @Option(
            help: ArgumentHelp(
                "Write when each request was sent and its answer read to FILE, in the bridges' latency-trace format, for `ftcp-bridge latency-report --client FILE`.",
                valueName: "FILE"
            )
        )
        var trace: String?
        @OptionGroup var common: Common

        func validate() throws {
            guard count > 0, count <= 1_000_000 else { throw ValidationError("--count must be between 1 and 1000000") }
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            let socket = try LabSocket(type: SocketType.stream)
            if let failure = try socket.connect(server) {
                throw ValidationError("cannot connect to \(server): \(String(cString: strerror(failure)))")
            }
            var noDelay: Int32 = 1
            setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            var reader = LineReader(socket: socket, deadline: deadline)
            try sendAll(socket, Array("HELLO rtt\n".utf8), deadline: deadline)
            _ = try reader.line()
            // "ECHO " + 58 characters + "\n" = 64 bytes on the wire; the answer is 59.
            let text = String(repeating: "r", count: 58)
            let request = Array("ECHO \(text)\n".utf8)
            var samples = LatencySamples(capacity: count)
            // The bridges' clock (CLOCK_MONOTONIC), one line per request and one per answer, the
            // exchange's number in place of a sequence number.
            var traceLines: [String] = []
            let port = socket.localPort
            for index in 0..<count {
                let started = ContinuousClock.now
                let sentAt = monotonicNanoseconds()
                try sendAll(socket, request, deadline: deadline)
                let answer = try reader.line()
                let elapsed = started.duration(to: .now)
                let readAt = monotonicNanoseconds()
                guard answer == text else { throw SessionFailure("ECHO came back as '\(answer)'") }
                samples.append(elapsed)
                if trace != nil {
                    traceLines.append("client.send,\(port),\(index),\(request.count),\(sentAt)")
                    traceLines.append("client.receive,\(port),\(index),\(text.utf8.count + 1),\(readAt)")
                }
            }
            if let trace {
                let contents =
                    "# hop,client_port,sequence,payload_length,monotonic_ns\n" + traceLines.joined(separator: "\n")
                    + "\n"
                guard let file = fopen(trace, "w") else {
                    throw ValidationError("cannot write \(trace): \(String(cString: strerror(errno)))")
                }
                fputs(contents, file)
                guard fclose(file) == 0 else {
                    throw ValidationError("cannot write \(trace): \(String(cString: strerror(errno)))")
                }
            }
            try sendAll(socket, Array("QUIT\n".utf8), deadline: deadline)
            _ = try reader.line()
            emit("exchanges=\(count) request_bytes=64 \(samples.summary)")
        }
    }

    /// Opens many connections to the demo server, says HELLO on each, and keeps them open and
    /// idle for a while: what the bridges hold per protected connection.
    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Open CONNECTIONS sessions (HELLO each), keep them idle for --hold-s seconds, then QUIT them all.",
            discussion:
                "Prints 'connections=N ready=1' once every session is open (read it to know when to measure), then a result line."
        )

        @Option(help: "The server's address and port.")
        var connect: String
        @Option(help: "How many connections.")
        var connections: Int = 100
        @Option(name: .customLong("hold-s"), help: "Seconds to keep them open once all are open.")
        var holdSeconds: Double = 5
        @OptionGroup var common: Common

        func validate() throws {
            guard connections > 0, connections <= 20_000 else {
                throw ValidationError("--connections must be between 1 and 20000")
            }
            guard holdSeconds >= 0, holdSeconds <= 3600 else {
                throw ValidationError("--hold-s must be between 0 and 3600")
            }
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            var open: [(LabSocket, LineReader)] = []
            for index in 0..<connections {
                let socket = try LabSocket(type: SocketType.stream)
                if let failure = try socket.connect(server) {
                    throw ValidationError(
                        "connection \(index) to \(server) failed: \(String(cString: strerror(failure)))"
                    )
                }
                var reader = LineReader(socket: socket, deadline: deadline)
                try sendAll(socket, Array("HELLO h\(index)\n".utf8), deadline: deadline)
                let answer = try reader.line()
                guard answer.hasPrefix("WELCOME") else {
                    throw SessionFailure("connection \(index): HELLO answered '\(answer)'")
                }
                open.append((socket, reader))
            }
            emit("connections=\(connections) ready=1")
            let until = ContinuousClock.now + .milliseconds(Int64(holdSeconds * 1000))
            while ContinuousClock.now < until { usleep(20_000) }
            for index in open.indices {
                try sendAll(open[index].0, Array("QUIT\n".utf8), deadline: deadline)
                let answer = try open[index].1.line()
                guard answer.hasPrefix("BYE") else {
                    throw SessionFailure("connection \(index): QUIT answered '\(answer)'")
                }
            }
            emit("ok=1 connections=\(connections)")
        }
    }
}

/// The kernel's monotonic clock in nanoseconds: the clock the bridges' latency traces use.
func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}
