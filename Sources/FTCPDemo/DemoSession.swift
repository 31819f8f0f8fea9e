/// One connection of the demo line protocol as a pure state machine: bytes in, bytes out, no I/O.
///
/// The same bytes in always give the same bytes out, however they are split into pieces, which
/// is what lets a primary and a secondary replica answer one client identically. Commands are
/// ASCII lines ending in `"\n"` (a `"\r"` before it is ignored); every reply ends in `"\n"`:
///
/// | Command       | Reply |
/// |---------------|-------|
/// | `HELLO name`  | `WELCOME name session-k`, k counting this connection's HELLOs from 1 |
/// | `ADD n`       | `TOTAL t`, the connection's running total (signed 64-bit) |
/// | `ECHO text`   | `text` |
/// | `SEND n`      | exactly n bytes of ``DemoByteStream`` from its offset 0, nothing else |
/// | `RECV n`      | reads the next n raw bytes, then `RECEIVED n sha256=<hex>` |
/// | `QUIT`        | `BYE total=t`, then the connection ends (further input is ignored) |
/// | anything else | `ERROR unknown command` (malformed arguments give other `ERROR` lines) |
///
/// While a `SEND` is being sent no further command is read, so replies keep their order. The
/// caller (the server) feeds what it received with ``receive(_:)`` (at most ``inputSpace``
/// bytes), reports the peer's end of input with ``receiveEnd()``, writes what
/// ``sendOutput(_:)`` offers, and closes the connection once ``isFinished``.
public struct DemoSession {
    /// The most unprocessed input the session holds; a client that sends faster than the
    /// session can answer is held back by TCP flow control.
    public static let inputCapacity = 64 * 1024
    /// The longest command line; a longer one is answered with `ERROR line too long` and skipped.
    public static let maximumLineLength = 4096
    /// Input is not processed while more reply bytes than this wait to be sent.
    public static let outputBacklogLimit = 64 * 1024
    /// How many bytes of a `SEND` stream are generated at a time.
    static let streamChunkBytes = 64 * 1024

    private enum Mode {
        /// Reading command lines.
        case commands
        /// Skipping the rest of an overlong line.
        case discardingLine
        /// Reading the raw bytes of `RECV announced`; `remaining` of them are still to come.
        case receiving(announced: UInt64, remaining: UInt64)
        /// `QUIT` was answered: everything else is ignored.
        case quit
    }

    private var mode = Mode.commands
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    /// Length of the `SEND` stream in progress and how much of it was sent.
    private var streamLength: UInt64 = 0
    private var streamSent: UInt64 = 0
    /// Generated stream bytes not sent yet: `chunk[chunkStart..<chunkEnd]` starts at `streamSent`.
    private var chunk: [UInt8] = []
    private var chunkStart = 0
    private var chunkEnd = 0
    private var digest = ContentDigest()
    private var total: Int64 = 0
    private var helloCount = 0
    private var inputEnded = false

    /// Bytes received from the peer so far.
    public private(set) var bytesReceived: UInt64 = 0
    /// Bytes handed out to be sent so far.
    public private(set) var bytesSent: UInt64 = 0

    public init() {}

    /// How many more bytes ``receive(_:)`` accepts now.
    public var inputSpace: Int {
        if case .quit = mode { return Self.inputCapacity }
        return Self.inputCapacity - (input.count - inputStart)
    }

    /// Whether the session can take input now (space is free and the peer has not ended its input).
    public var wantsInput: Bool { !inputEnded && inputSpace > 0 }

    /// Whether bytes are waiting to be sent.
    public var hasOutput: Bool { outputStart < output.count || streamSent < streamLength }

    /// Whether the connection should end now: `QUIT` was answered, or the peer ended its input,
    /// and everything there was to send has been sent.
    public var isFinished: Bool {
        guard !hasOutput else { return false }
        if case .quit = mode { return true }
        return inputEnded
    }

    /// Takes received bytes, as many as ``inputSpace`` allows, and processes what it can.
    ///
    /// - Returns: how many bytes were taken; offer the rest again after sending output.
    @discardableResult
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        precondition(!inputEnded, "DemoSession.receive after receiveEnd")
        var offset = 0
        // Fast path for uploads: raw RECV bytes go straight into the digest when nothing is queued.
        if case let .receiving(announced, remaining) = mode, input.count == inputStart {
            let take = Int(min(remaining, UInt64(bytes.count)))
            digest.update(UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            offset = take
            finishReceiving(announced: announced, remaining: remaining - UInt64(take))
        }
        if case .quit = mode {
            bytesReceived += UInt64(bytes.count)
            return bytes.count
        }
        let take = min(bytes.count - offset, inputSpace)
        if inputStart > 0, inputStart == input.count {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
        } else if inputStart >= Self.inputCapacity / 2 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
        input.append(contentsOf: bytes[offset..<(offset + take)])
        bytesReceived += UInt64(offset + take)
        process()
        return offset + take
    }

    /// Takes received bytes from an array; see ``receive(_:)``.
    @discardableResult
    public mutating func receive(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { receive($0) }
    }

    /// Records that the peer ended its input (a FIN): what is buffered is still processed and
    /// answered, and a `SEND` in progress is finished, before ``isFinished`` becomes true.
    public mutating func receiveEnd() {
        inputEnded = true
        process()
    }

    /// Offers the next bytes to send to `body`, which returns how many of them it sent.
    ///
    /// - Returns: what `body` returned, or 0 without calling it when nothing waits.
    @discardableResult
    public mutating func sendOutput(_ body: (UnsafeRawBufferPointer) -> Int) -> Int {
        let sent: Int
        if outputStart < output.count {
            sent = output.withUnsafeBytes { buffer in
                body(UnsafeRawBufferPointer(rebasing: buffer[outputStart...]))
            }
            precondition(sent >= 0 && sent <= output.count - outputStart, "sendOutput: body sent more than offered")
            outputStart += sent
            if outputStart == output.count {
                output.removeAll(keepingCapacity: true)
                outputStart = 0
            }
        } else if streamSent < streamLength {
            if chunkStart == chunkEnd {
                let count = Int(min(UInt64(Self.streamChunkBytes), streamLength - streamSent))
                if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: Self.streamChunkBytes) }
                chunk.withUnsafeMutableBytes { buffer in
                    DemoByteStream.fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), from: streamSent)
                }
                chunkStart = 0
                chunkEnd = count
            }
            sent = chunk.withUnsafeBytes { buffer in
                body(UnsafeRawBufferPointer(rebasing: buffer[chunkStart..<chunkEnd]))
            }
            precondition(sent >= 0 && sent <= chunkEnd - chunkStart, "sendOutput: body sent more than offered")
            chunkStart += sent
            streamSent += UInt64(sent)
            if streamSent == streamLength {
                streamSent = 0
                streamLength = 0
                chunkStart = 0
                chunkEnd = 0
            }
        } else {
            return 0
        }
        bytesSent += UInt64(sent)
        process()
        return sent
    }

    /// Takes up to `limit` bytes of pending output as an array (for tests and simple clients).
    public mutating func takeOutput(limit: Int = .max) -> [UInt8] {
        var result: [UInt8] = []
        while result.count < limit, hasOutput {
            sendOutput { buffer in
                let count = min(buffer.count, limit - result.count)
                result.append(contentsOf: buffer[0..<count])
                return count
            }
        }
        return result
    }

    /// Processes buffered input until it runs out or output must drain first.
    private mutating func process() {
        while streamSent == streamLength, output.count - outputStart < Self.outputBacklogLimit,
            inputStart < input.count
        {
            switch mode {
            case .quit:
                inputStart = input.count
            case let .receiving(announced, remaining):
                let take = Int(min(remaining, UInt64(input.count - inputStart)))
                input.withUnsafeBytes { buffer in
                    digest.update(UnsafeRawBufferPointer(rebasing: buffer[inputStart..<(inputStart + take)]))
                }
                inputStart += take
                finishReceiving(announced: announced, remaining: remaining - UInt64(take))
            case .discardingLine:
                if let newline = input[inputStart...].firstIndex(of: UInt8(ascii: "\n")) {
                    inputStart = newline + 1
                    mode = .commands
                } else {
                    inputStart = input.count
                }
            case .commands:
                guard let newline = input[inputStart...].firstIndex(of: UInt8(ascii: "\n")) else {
                    if input.count - inputStart > Self.maximumLineLength {
                        reply("ERROR line too long")
                        inputStart = input.count
                        mode = .discardingLine
                    }
                    return
                }
                var end = newline
                if end > inputStart, input[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = input[inputStart..<end]
                inputStart = newline + 1
                if line.count > Self.maximumLineLength {
                    reply("ERROR line too long")
                } else {
                    execute(line)
                }
            }
        }
        if inputStart == input.count, inputStart > 0 {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
        }
    }

    /// Updates the `RECV` state after `remaining` bytes are still to come, answering when none are.
    private mutating func finishReceiving(announced: UInt64, remaining: UInt64) {
        guard remaining == 0 else {
            mode = .receiving(announced: announced, remaining: remaining)
            return
        }
        let hex = ContentDigest.hex(digest.finalize())
        digest = ContentDigest()
        mode = .commands
        reply("RECEIVED \(announced) sha256=\(hex)")
    }

    /// Runs one command line (without its line end).
    private mutating func execute(_ line: ArraySlice<UInt8>) {
        let space = line.firstIndex(of: UInt8(ascii: " "))
        let verb = line[line.startIndex..<(space ?? line.endIndex)]
        let argument = space.map { line[($0 + 1)...] } ?? line[line.endIndex...]
        switch String(decoding: verb, as: UTF8.self) {
        case "HELLO":
            guard !argument.isEmpty else { return reply("ERROR HELLO needs a name") }
            helloCount += 1
            reply(Array("WELCOME ".utf8) + argument + Array(" session-\(helloCount)".utf8))
        case "ADD":
            guard let value = Int64(String(decoding: argument, as: UTF8.self)) else {
                return reply("ERROR ADD needs an integer")
            }
            let (sum, overflow) = total.addingReportingOverflow(value)
            guard !overflow else { return reply("ERROR total would overflow") }
            total = sum
            reply("TOTAL \(total)")
        case "ECHO":
            reply(Array(argument))
        case "SEND":
            guard let count = Self.byteCount(argument) else { return reply("ERROR SEND needs a byte count") }
            streamLength = count
            streamSent = 0
        case "RECV":
            guard let count = Self.byteCount(argument) else { return reply("ERROR RECV needs a byte count") }
            finishReceiving(announced: count, remaining: count)
        case "QUIT":
            reply("BYE total=\(total)")
            mode = .quit
            inputStart = input.count
        default:
            reply("ERROR unknown command")
        }
    }

    /// A byte count written as plain decimal digits.
    private static func byteCount(_ text: ArraySlice<UInt8>) -> UInt64? {
        guard !text.isEmpty, text.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return UInt64(String(decoding: text, as: UTF8.self))
    }

    private mutating func reply(_ text: String) {
        output.append(contentsOf: text.utf8)
        output.append(UInt8(ascii: "\n"))
    }

    private mutating func reply(_ bytes: [UInt8]) {
        output.append(contentsOf: bytes)
        output.append(UInt8(ascii: "\n"))
    }
}
