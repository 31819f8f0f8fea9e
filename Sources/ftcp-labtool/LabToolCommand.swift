import ArgumentParser
import FTCPDemo
import FTCPLinux
import Foundation
import Glibc

/// `ftcp-labtool`: deterministic traffic for the namespace lab (TCP byte streams with SHA-256,
/// numbered UDP datagrams, UDP round-trip times). Every wait is bounded by `--timeout-s`.
@main
struct LabToolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftcp-labtool",
        abstract: "Traffic sources and sinks for the ftcp namespace lab.",
        discussion: """
            Results go to standard output as one line of key=value pairs, for example
            "bytes=10000000 sha256=… seconds=0.012". Run each side in its namespace with
            `ip netns exec ftcp-primary ftcp-labtool sink --listen 10.80.0.1:5001`.
            """,
        subcommands: [
            Session.self, ConnectTime.self, Churn.self, RoundTrip.self, Hold.self, BenchReport.self, Sink.self,
            Source.self,
            UDPSend.self, UDPEcho.self, UDPPing.self, SYNFlood.self, EchoStream.self, Blind.self, FragmentFlood.self,
            Pipeline.self,
        ]
    )
}

/// Options every subcommand shares.
struct Common: ParsableArguments {
    @Option(name: .customLong("timeout-s"), help: "Give up after this many seconds.")
    var timeoutSeconds: Double = 30

    var deadline: ContinuousClock.Instant {
        .now + .milliseconds(Int64(timeoutSeconds * 1000))
    }

    func validate() throws {
        guard timeoutSeconds > 0, timeoutSeconds <= 3600 else {
            throw ValidationError("--timeout-s must be above 0 and at most 3600")
        }
    }
}

func endpoint(_ text: String, _ option: String) throws -> Endpoint {
    guard let value = Endpoint(text) else {
        throw ValidationError("\(option) must be an IPv4 address and port such as 10.80.0.1:5001, not '\(text)'")
    }
    return value
}

func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func seconds(_ duration: Duration) -> String {
    String(format: "%.6f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
}

extension LabToolCommand {
    /// Accepts one TCP connection, reads to end of stream, prints the byte count and SHA-256.
    struct Sink: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Receive one TCP stream; print bytes, sha256, seconds and the longest wait between reads (accept to EOF)."
        )

        @Option(help: "Address and port to listen on.")
        var listen: String
        @OptionGroup var common: Common

        func run() throws {
            let deadline = common.deadline
            let listener = try LabSocket(type: SocketType.stream)
            try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            try listener.bind(try endpoint(listen, "--listen"))
            try listener.listen()
            FileHandle.standardError.write(Data("listening on \(listen)\n".utf8))
            guard let connection = try listener.accept(until: deadline) else {
                emit("error=timeout waiting for a connection")
                throw ExitCode(3)
            }
            let started = ContinuousClock.now
            var hasher = ContentDigest()
            var total = 0
            var lastRead = started
            var longestStall = Duration.zero
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 8)
            defer { buffer.deallocate() }
            while true {
                guard try connection.wait(POLLIN, until: deadline) else {
                    emit("error=timeout bytes=\(total)")
                    throw ExitCode(3)
                }
                let count = try connection.receive(into: buffer)
                let now = ContinuousClock.now
                longestStall = max(longestStall, lastRead.duration(to: now))
                lastRead = now
                if count == 0 { break }
                hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                total += count
            }
            let stall = Int(longestStall / .milliseconds(1))
            emit(
                "bytes=\(total) sha256=\(hasher.finalizeHex()) seconds=\(seconds(started.duration(to: .now))) longest_stall_ms=\(stall)"
            )
        }
    }

    /// Connects (retrying while refused) and sends a deterministic stream of bytes.
    struct Source: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send N deterministic bytes over TCP; print bytes, sha256 and seconds."
        )

        @Option(help: "Address and port to connect to.")
        var connect: String
        @Option(help: "How many bytes to send.")
        var bytes: Int
        @Option(help: "Seed of the byte pattern.")
        var seed: UInt64 = 1
        @Option(help: "Send no faster than this many megabytes a second (0: as fast as TCP goes).")
        var rateMegabytes: Double = 0
        @OptionGroup var common: Common

        func run() throws {
            let deadline = common.deadline
            let target = try endpoint(connect, "--connect")
            var socket = try LabSocket(type: SocketType.stream)
            while let refused = try socket.connect(target) {
                guard ContinuousClock.now < deadline else {
                    emit("error=cannot connect to \(target): errno \(refused)")
                    throw ExitCode(3)
                }
                pause(for: .milliseconds(20))
                socket = try LabSocket(type: SocketType.stream)
            }
            let started = ContinuousClock.now
            var pattern = PatternStream(seed: seed)
            var hasher = ContentDigest()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
            defer { buffer.deallocate() }
            var sent = 0
            while sent < bytes {
                let chunk = min(buffer.count, bytes - sent)
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<chunk])
                pattern.fill(slice)
                hasher.update(UnsafeRawBufferPointer(slice))
                var offset = 0
                while offset < chunk {
                    guard try socket.wait(POLLOUT, until: deadline) else {
                        emit("error=timeout bytes=\(sent + offset)")
                        throw ExitCode(3)
                    }
                    offset += try socket.send(UnsafeRawBufferPointer(rebasing: slice[offset...]))
                }
                sent += chunk
                if rateMegabytes > 0 {
                    // Paced: never ahead of the rate since the start.
                    let due = started + .milliseconds(Int64(Double(sent) / (rateMegabytes * 1_000)))
                    if ContinuousClock.now < due { pause(for: ContinuousClock.now.duration(to: due)) }
                }
            }
            try socket.shutdownWrite()
            // Wait for the receiver to close, so "seconds" covers delivery, not just buffering.
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { scratch.deallocate() }
            while try socket.wait(POLLIN, until: deadline), try socket.receive(into: scratch) > 0 {}
            emit("bytes=\(sent) sha256=\(hasher.finalizeHex()) seconds=\(seconds(started.duration(to: .now)))")
        }
    }

    /// Sends numbered datagrams: "FTCP", run id (big-endian 32 bits), sequence number (32 bits).
    struct UDPSend: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "udp-send",
            abstract: "Send COUNT numbered UDP datagrams (payload: 'FTCP', run id, sequence, all big-endian)."
        )

        @Option(help: "Destination address and port.")
        var to: String
        @Option(help: "Number of datagrams.")
        var count: Int = 2000
        @Option(name: .customLong("interval-us"), help: "Microseconds between datagrams.")
        var intervalMicroseconds: Int = 200
        @Option(name: .customLong("run-id"), help: "Run id written into every datagram.")
        var runID: UInt32 = 1
        @Option(help: "Payload size in bytes (at least 12).")
        var size: Int = 64
        @OptionGroup var common: Common

        func validate() throws {
            guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be 1...1000000") }
            guard (12...1400).contains(size) else { throw ValidationError("--size must be 12...1400") }
        }

        func run() throws {
            let deadline = common.deadline
            // Unconnected on purpose: a connected UDP socket reports ICMP port-unreachable as an
            // error on a later send, and that datagram is then not sent at all.
            let socket = try LabSocket(type: SocketType.datagram)
            let destination = try endpoint(to, "--to")
            var payload = [UInt8](repeating: 0, count: size)
            payload[0...3] = [0x46, 0x54, 0x43, 0x50]
            let started = ContinuousClock.now
            var sent = 0
            for sequence in 0..<count {
                guard ContinuousClock.now < deadline else { break }
                for index in 0..<4 {
                    payload[4 + index] = UInt8(truncatingIfNeeded: runID >> UInt32(24 - 8 * index))
                    payload[8 + index] = UInt8(truncatingIfNeeded: UInt32(sequence) >> UInt32(24 - 8 * index))
                }
                _ = try payload.withUnsafeBytes { try socket.send($0, to: destination) }
                sent += 1
                let due = started + .microseconds(Int64(intervalMicroseconds) * Int64(sequence + 1))
                pause(for: ContinuousClock.now.duration(to: due))
            }
            emit("sent=\(sent) seconds=\(seconds(started.duration(to: .now)))")
        }
    }

    /// Echoes every datagram back to its sender until the timeout.
    struct UDPEcho: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "udp-echo",
            abstract: "Echo UDP datagrams back until --timeout-s."
        )

        @Option(help: "Address and port to listen on.")
        var listen: String
        @OptionGroup var common: Common

        func run() throws {
            let deadline = common.deadline
            let socket = try LabSocket(type: SocketType.datagram)
            try socket.bind(try endpoint(listen, "--listen"))
            var buffer = [UInt8](repeating: 0, count: 2048)
            var echoed = 0
            while try socket.wait(POLLIN, until: deadline) {
                var peer = sockaddr_in()
                var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = try buffer.withUnsafeMutableBytes { bytes in
                    try withUnsafeMutablePointer(to: &peer) { pointer in
                        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                            try systemCall("recvfrom") {
                                recvfrom(socket.fd, bytes.baseAddress, bytes.count, 0, generic, &peerLength)
                            }
                        }
                    }
                }
                _ = try buffer.withUnsafeBytes { bytes in
                    try withUnsafePointer(to: &peer) { pointer in
                        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                            try systemCall("sendto") {
                                sendto(socket.fd, bytes.baseAddress, count, 0, generic, peerLength)
                            }
                        }
                    }
                }
                echoed += 1
            }
            emit("echoed=\(echoed)")
        }
    }

    /// Measures UDP round trips against `udp-echo`.
    struct UDPPing: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "udp-ping",
            abstract: "Send COUNT UDP probes to a udp-echo and print round-trip times in milliseconds."
        )

        @Option(help: "Address and port of the udp-echo.")
        var to: String
        @Option(help: "Number of probes.")
        var count: Int = 20
        @Option(name: .customLong("interval-ms"), help: "Milliseconds between probes.")
        var intervalMilliseconds: Int = 20
        @Option(name: .customLong("wait-ms"), help: "How long to wait for each answer.")
        var waitMilliseconds: Int = 1000
        @OptionGroup var common: Common

        func run() throws {
            let deadline = common.deadline
            let socket = try LabSocket(type: SocketType.datagram)
            if let failure = try socket.connect(try endpoint(to, "--to")) {
                emit("error=connect errno \(failure)")
                throw ExitCode(3)
            }
            var samples: [Double] = []
            var buffer = [UInt8](repeating: 0, count: 64)
            for sequence in 0..<count where ContinuousClock.now < deadline {
                var probe = [UInt8](repeating: 0, count: 16)
                for index in 0..<4 {
                    probe[index] = UInt8(truncatingIfNeeded: UInt32(sequence) >> UInt32(24 - 8 * index))
                }
                let sentAt = ContinuousClock.now
                _ = try? probe.withUnsafeBytes { try socket.send($0) }
                let answerDeadline = min(deadline, sentAt + .milliseconds(waitMilliseconds))
                while try socket.wait(POLLIN, until: answerDeadline) {
                    guard let received = try? buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }) else {
                        break
                    }
                    if received >= 4, buffer[0..<4].elementsEqual(probe[0..<4]) {
                        let rtt = sentAt.duration(to: .now)
                        samples.append(
                            Double(rtt.components.seconds) * 1000 + Double(rtt.components.attoseconds) / 1e15
                        )
                        break
                    }
                }
                pause(for: ContinuousClock.now.duration(to: sentAt + .milliseconds(intervalMilliseconds)))
            }
            let sorted = samples.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            let average = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
            emit(
                String(
                    format: "sent=%d received=%d min_ms=%.3f median_ms=%.3f avg_ms=%.3f max_ms=%.3f",
                    count,
                    sorted.count,
                    sorted.first ?? 0,
                    median,
                    average,
                    sorted.last ?? 0
                )
            )
        }
    }
}
