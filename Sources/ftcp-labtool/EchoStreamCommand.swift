import ArgumentParser
import FTCPLinux
import Foundation
import Glibc

extension LabToolCommand {
    /// A stream echoed both ways at once: the client sends ECHO lines at a set rate and reads
    /// the echoes back while it sends, as an interactive session under load does. Each echo is
    /// checked byte for byte. The result line gives the time, and the longest wait for a byte
    /// while echoes were outstanding (the stall a client saw); a session that gets no byte for
    /// --hang-s seconds ends as hung.
    struct EchoStream: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "echo-stream",
            abstract: "Send BYTES in ECHO lines at RATE to the demo server while reading the echoes; check every byte.",
            discussion: """
                Prints: echo-stream ok=0|1 bytes=N seconds=S longest_stall_ms=M hung=0|1. Exit status 0 only
                if every byte came back right.
                """
        )

        @Option(help: "The demo server's address and port.")
        var connect: String = "10.80.0.1:9999"
        @Option(help: "Bytes of text to have echoed (the ECHO line's framing not counted).")
        var bytes: Int = 30_000_000
        @Option(help: "Sending rate, bytes per second.")
        var rate: Int = 8_000_000
        @Option(help: "Text bytes per ECHO line (the demo server takes lines of up to 4,096 bytes).")
        var lineBytes: Int = 4_000
        @Option(
            name: .customLong("hang-s"),
            help: "Seconds without a byte (while echoes are due) that count as a hang."
        )
        var hangSeconds: Double = 30
        @OptionGroup var common: Common

        func validate() throws {
            guard (1...1_000_000_000).contains(bytes) else { throw ValidationError("--bytes: 1 to 1000000000") }
            guard (1_000...1_000_000_000).contains(rate) else { throw ValidationError("--rate: 1000 to 1000000000") }
            guard (1...4_000).contains(lineBytes) else { throw ValidationError("--line-bytes: 1 to 4000") }
            guard hangSeconds > 0 else { throw ValidationError("--hang-s must be above 0") }
        }

        /// The text of line `index`: printable, different from line to line.
        static func text(line index: Int, length: Int) -> [UInt8] {
            (0..<length).map { UInt8(33 + (index &* 7 &+ $0 &* 13) % 90) }
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            let socket = try LabSocket(type: SocketType.stream)
            if let failure = try socket.connect(server) {
                throw ValidationError("cannot connect to \(server): \(String(cString: strerror(failure)))")
            }
            _ = fcntl(socket.fd, F_SETFL, fcntl(socket.fd, F_GETFL) | O_NONBLOCK)
            let lines = (bytes + lineBytes - 1) / lineBytes
            let started = ContinuousClock.now
            var lastByte = started
            var longestStall = Duration.zero
            // Sending: the line being written and how much of it is out.
            var sendLine = 0
            var outgoing: [UInt8] = []
            var outgoingSent = 0
            var textSent = 0
            // Receiving: the echo expected next and how far into it.
            var receiveLine = 0
            var expected = Self.text(line: 0, length: min(lineBytes, bytes)) + [0x0a]
            var expectedOffset = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var outcome = "ok"

            func lineLength(_ index: Int) -> Int { min(lineBytes, bytes - index * lineBytes) }

            loop: while receiveLine < lines {
                let now = ContinuousClock.now
                if now >= deadline {
                    outcome = "timeout"
                    break
                }
                let waited = lastByte.duration(to: now)
                if receiveLine < sendLine || outgoingSent > 0 {
                    longestStall = max(longestStall, waited)
                    if waited > .milliseconds(Int64(hangSeconds * 1000)) {
                        outcome = "hung"
                        break
                    }
                } else {
                    lastByte = now
                }
                // Send what the rate allows by now.
                let elapsed = started.duration(to: now)
                let allowed = Int(
                    Double(rate) * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                )
                var wantWrite = false
                while sendLine < lines, textSent < allowed || outgoingSent < outgoing.count {
                    if outgoingSent == outgoing.count {
                        let length = lineLength(sendLine)
                        outgoing = Array("ECHO ".utf8) + Self.text(line: sendLine, length: length) + [0x0a]
                        outgoingSent = 0
                    }
                    let count = outgoing.withUnsafeBytes { line in
                        let rest = UnsafeRawBufferPointer(rebasing: line[outgoingSent...])
                        return Glibc.send(socket.fd, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
                    }
                    if count < 0 {
                        if errno == EAGAIN || errno == EWOULDBLOCK {
                            wantWrite = true
                            break
                        }
                        outcome = "send-failed-\(errno)"
                        break loop
                    }
                    outgoingSent += count
                    if outgoingSent == outgoing.count {
                        textSent += lineLength(sendLine)
                        sendLine += 1
                        outgoingSent = 0
                        outgoing = []
                    }
                }
                // Read what came back and check it.
                var descriptor = pollfd(fd: socket.fd, events: Int16(POLLIN | (wantWrite ? POLLOUT : 0)), revents: 0)
                _ = poll(&descriptor, 1, 2)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, 0) }
                    if count == 0 {
                        outcome = "closed"
                        break loop
                    }
                    if count < 0 {
                        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
                        outcome = "receive-failed-\(errno)"
                        break loop
                    }
                    lastByte = ContinuousClock.now
                    for byte in buffer[0..<count] {
                        guard receiveLine < lines, byte == expected[expectedOffset] else {
                            outcome = "mismatch-line-\(receiveLine)-offset-\(expectedOffset)"
                            break loop
                        }
                        expectedOffset += 1
                        if expectedOffset == expected.count {
                            receiveLine += 1
                            expectedOffset = 0
                            if receiveLine < lines {
                                expected = Self.text(line: receiveLine, length: lineLength(receiveLine)) + [0x0a]
                            }
                        }
                    }
                }
            }
            let total = started.duration(to: .now)
            let echoed = receiveLine * lineBytes
            emit(
                "echo-stream ok=\(outcome == "ok" ? 1 : 0) outcome=\(outcome) bytes=\(min(echoed, bytes)) seconds=\(seconds(total)) longest_stall_ms=\(longestStall.components.seconds * 1000 + longestStall.components.attoseconds / 1_000_000_000_000_000) hung=\(outcome == "hung" ? 1 : 0)"
            )
            if outcome != "ok" { throw ExitCode(1) }
        }
    }
}
