import ArgumentParser
import FTCPLinux
import Glibc

extension LabToolCommand {
    /// Times TCP connection setup: how long connect() takes until the three-way handshake
    /// is complete on the client, over many connections, one at a time.
    struct ConnectTime: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "connect-time",
            abstract:
                "Open and close COUNT TCP connections one after another; print p50/p99/max connect() time in microseconds."
        )

        @Option(help: "The server's address and port.")
        var connect: String
        @Option(help: "How many connections.")
        var count: Int = 1000
        @OptionGroup var common: Common

        func validate() throws {
            guard count > 0, count <= 100_000 else { throw ValidationError("--count must be between 1 and 100000") }
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            var samples = LatencySamples(capacity: count)
            for index in 0..<count {
                guard ContinuousClock.now < deadline else {
                    throw ValidationError("timed out after \(index) of \(count) connections")
                }
                let socket = try LabSocket(type: SocketType.stream)
                // Close with RST so thousands of connections leave no TIME_WAIT behind.
                try socket.resetOnClose()
                let started = ContinuousClock.now
                if let failure = try socket.connect(server) {
                    throw ValidationError(
                        "connection \(index) to \(server) failed: \(String(cString: strerror(failure)))"
                    )
                }
                samples.append(started.duration(to: .now))
            }
            emit("connections=\(count) \(samples.summary)")
        }
    }
}
