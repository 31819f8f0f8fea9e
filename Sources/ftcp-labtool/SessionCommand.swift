import ArgumentParser
import FTCPDemo
import FTCPLinux
import Foundation
import Glibc

extension LabToolCommand {
    /// A client of the demo server's line protocol that checks every answer:
    /// the session state the two replicas keep, a download checked byte by
    /// byte against the deterministic stream, an upload checked by SHA-256,
    /// and a clean close (FIN, not RST).
    struct Session: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one checked session against ftcp-demo-server; print the dialogue or one result line.",
            discussion: """
                Exit status 0 only if every answer was right. The result line reports bytes, seconds and the
                longest gap between two reads of the download (the stall a client application saw).
                """
        )

        @Option(help: "The server's address and port.")
        var connect: String = "10.80.0.1:9999"
        @Option(help: "Name sent with HELLO.")
        var name: String = "lab"
        @Option(help: "Bytes the server sends to the client (SEND n).")
        var download: UInt64 = 0
        @Option(help: "Bytes the client sends to the server (RECV n).")
        var upload: UInt64 = 0
        @Flag(help: "Print each request and answer.")
        var verbose = false
        @Option(
            help:
                "Write the download's progress to this file: one line per read, milliseconds since the session began and bytes received so far (for a time-sequence plot)."
        )
        var trace: String?
        @Flag(
            help:
                "Shut down the client's sending side right after asking for the download (half-close); the server must still send every byte, then close."
        )
        var halfClose = false
        @Option(
            help:
                "Milliseconds to wait before each step of the session (each request, the half-close, reading the download, QUIT), so that many sessions are caught in every phase at once."
        )
        var thinkMs: UInt32 = 0
        @Option(
            help:
                "Connect from this local port (bound with SO_REUSEADDR), to use a client's ports again on purpose."
        )
        var localPort: UInt16?
        @Flag(
            help:
                "After the opening exchanges, end the connection with a reset (SO_LINGER 0) instead of the rest of the session."
        )
        var abort = false
        @OptionGroup var common: Common

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            let started = ContinuousClock.now
            let socket = try LabSocket(type: SocketType.stream)
            if let localPort {
                try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                try socket.bind(try endpoint("0.0.0.0:\(localPort)", "--local-port"))
            }
            if let failure = try socket.connect(server) {
                throw ValidationError("cannot connect to \(server): \(String(cString: strerror(failure)))")
            }
            var reader = LineReader(socket: socket, deadline: deadline)
            // Every read of a download is noted: for --trace, and for the recovery after a stall.
            if trace != nil || download > 0 { reader.trace = (started, []) }
            defer { if let trace, let samples = reader.trace?.samples { writeTrace(samples, to: trace) } }

            func think() {
                if thinkMs > 0 { usleep(thinkMs * 1000) }
            }
            func exchange(_ request: String, expect expected: String) throws {
                think()
                try sendAll(socket, Array((request + "\n").utf8), deadline: deadline)
                let answer = try reader.line()
                if verbose { emit("> \(request)\n< \(answer)") }
                guard answer == expected else {
                    throw SessionFailure("asked '\(request)', expected '\(expected)', got '\(answer)'")
                }
            }

            try exchange("HELLO \(name)", expect: "WELCOME \(name) session-1")
            try exchange("ADD 5", expect: "TOTAL 5")
            try exchange("ADD 37", expect: "TOTAL 42")
            try exchange("ECHO the same connection, two servers", expect: "the same connection, two servers")
            if abort {
                try socket.resetOnClose()  // the socket closes as run() returns
                emit("ok=1 aborted=1 seconds=\(seconds(started.duration(to: .now)))")
                return
            }

            var longestStall = Duration.zero
            var longestUploadStall = Duration.zero
            if halfClose {
                think()
                try sendAll(socket, Array("SEND \(download)\n".utf8), deadline: deadline)
                try socket.shutdownWrite()
                think()
                longestStall = try reader.checkStream(count: download)
                try reader.expectEndOfStream()
                if verbose { emit("> SEND \(download), then FIN\n< \(download) bytes, then FIN") }
                emit(
                    "ok=1 downloaded=\(download) uploaded=0 half_closed=1 seconds=\(seconds(started.duration(to: .now)))"
                )
                return
            }
            if download > 0 {
                think()
                try sendAll(socket, Array("SEND \(download)\n".utf8), deadline: deadline)
                longestStall = try reader.checkStream(count: download)
                if verbose { emit("> SEND \(download)\n< \(download) bytes, each as the stream says") }
            }
            if upload > 0 {
                think()
                try sendAll(socket, Array("RECV \(upload)\n".utf8), deadline: deadline)
                var digest = ContentDigest()
                var chunk = [UInt8](repeating: 0, count: 64 * 1024)
                var offset: UInt64 = 0
                var lastProgress = ContinuousClock.now
                while offset < upload {
                    let count = Int(min(UInt64(chunk.count), upload - offset))
                    chunk.withUnsafeMutableBytes {
                        DemoByteStream.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<count]), from: offset)
                    }
                    digest.update(chunk[0..<count])
                    try sendAll(socket, chunk[0..<count], deadline: deadline)
                    // The upload's stall: the longest time the client application could not hand
                    // the next 64 KiB to its TCP.
                    let now = ContinuousClock.now
                    longestUploadStall = max(longestUploadStall, lastProgress.duration(to: now))
                    lastProgress = now
                    offset += UInt64(count)
                }
                let expected = "RECEIVED \(upload) sha256=\(digest.finalizeHex())"
                let answer = try reader.line()
                if verbose { emit("> RECV \(upload) + \(upload) bytes\n< \(answer)") }
                guard answer == expected else {
                    throw SessionFailure("upload: expected '\(expected)', got '\(answer)'")
                }
            }
            try exchange("QUIT", expect: "BYE total=42")
            try reader.expectEndOfStream()
            let elapsed = started.duration(to: .now)
            let recovery = reader.trace.flatMap { DeliveryRecovery.milliseconds($0.samples) }
            emit(
                "ok=1 downloaded=\(download) uploaded=\(upload) seconds=\(seconds(elapsed)) "
                    + "longest_stall_ms=\(milliseconds(longestStall)) longest_upload_stall_ms=\(milliseconds(longestUploadStall)) "
                    + "recovery_ms=\(recovery.map { String(format: "%.3f", $0) } ?? "nan")"
            )
        }
    }
}

/// Writes a download trace as "milliseconds bytes" lines.
func writeTrace(_ samples: [(Duration, UInt64)], to path: String) {
    var text = "# milliseconds_since_session_start bytes_received\n"
    for (at, bytes) in samples { text += "\(milliseconds(at)) \(bytes)\n" }
    guard let file = fopen(path, "w") else {
        FileHandle.standardError.write(
            Data("cannot write the trace to \(path): \(String(cString: strerror(errno)))\n".utf8)
        )
        return
    }
    fputs(text, file)
    fclose(file)
}

func milliseconds(_ duration: Duration) -> String {
    String(format: "%.3f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

/// What went wrong in a checked session.
struct SessionFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = "session failed: " + description }
}

func sendAll<Bytes: Collection<UInt8>>(_ socket: LabSocket, _ bytes: Bytes, deadline: ContinuousClock.Instant) throws {
    let array = Array(bytes)
    var offset = 0
    while offset < array.count {
        guard try socket.wait(POLLOUT, until: deadline) else { throw SessionFailure("timed out sending") }
        let sent = try array.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
        offset += sent
    }
}

/// Reads lines and raw stream bytes from one socket, every wait bounded.
struct LineReader {
    let socket: LabSocket
    let deadline: ContinuousClock.Instant
    private var buffered: [UInt8] = []
    /// When set, every read of the download stream is noted: time since `origin`, bytes so far.
    var trace: (origin: ContinuousClock.Instant, samples: [(Duration, UInt64)])?
    private var scratch = [UInt8](repeating: 0, count: 256 * 1024)

    init(socket: LabSocket, deadline: ContinuousClock.Instant) {
        self.socket = socket
        self.deadline = deadline
    }

    /// Reads more bytes; returns how many (0 at end of stream).
    private mutating func fill() throws -> Int {
        guard try socket.wait(POLLIN, until: deadline) else { throw SessionFailure("timed out waiting for the server") }
        let count: Int
        let socket = self.socket
        do {
            count = try scratch.withUnsafeMutableBytes { try socket.receive(into: $0) }
        } catch let error as SystemCallError where error.errno == ECONNRESET {
            throw SessionFailure("the connection was reset")
        }
        buffered += scratch[0..<count]
        return count
    }

    /// Whether a whole line is already buffered (``line()`` returns it without reading).
    var hasLine: Bool { buffered.contains(UInt8(ascii: "\n")) }

    mutating func line() throws -> String {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let text = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return text
            }
            if try fill() == 0 { throw SessionFailure("the server closed the connection in the middle of a line") }
        }
    }

    /// Reads `count` bytes of the deterministic stream, checking each; returns the longest gap between reads.
    mutating func checkStream(count: UInt64) throws -> Duration {
        var offset: UInt64 = 0
        var last = ContinuousClock.now
        var longest = Duration.zero
        var expected = [UInt8](repeating: 0, count: scratch.count)
        while offset < count {
            if buffered.isEmpty {
                if try fill() == 0 { throw SessionFailure("stream ended after \(offset) of \(count) bytes") }
                let now = ContinuousClock.now
                longest = max(longest, last.duration(to: now))
                last = now
                if let origin = trace?.origin {
                    trace?.samples.append((origin.duration(to: now), offset + UInt64(buffered.count)))
                }
            }
            let take = Int(min(UInt64(buffered.count), count - offset))
            expected.withUnsafeMutableBytes {
                DemoByteStream.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<take]), from: offset)
            }
            if buffered[0..<take] != expected[0..<take] {
                let index = (0..<take).first { buffered[$0] != expected[$0] } ?? 0
                throw SessionFailure(
                    "byte \(offset + UInt64(index)) of the stream is \(buffered[index]), expected \(expected[index])"
                )
            }
            buffered.removeFirst(take)
            offset += UInt64(take)
        }
        return longest
    }

    mutating func expectEndOfStream() throws {
        guard buffered.isEmpty else { throw SessionFailure("unexpected bytes after BYE") }
        if try fill() != 0 { throw SessionFailure("unexpected bytes after BYE") }
    }
}
