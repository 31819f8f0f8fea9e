import ArgumentParser
import FTCPLinux
import Glibc

extension LabToolCommand {
    /// Pipelined small requests, as redis-benchmark -P sends them: several connections to the
    /// demo server, each keeping a number of 64-byte `ECHO` requests in flight, every answer
    /// checked. The rate of answered requests is the figure.
    struct Pipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Keep --depth 64-byte ECHO requests in flight on each of --connections connections until each has had --requests answered; print the rate and the per-request latency.",
            discussion:
                "Result line: requests=N seconds=S rate_per_s=R p50_us=… p99_us=… max_us=… (latency from a request's send to its answer, queueing behind the requests before it included)."
        )

        @Option(help: "The server's address and port.")
        var connect: String
        @Option(help: "Connections at once.")
        var connections: Int = 20
        @Option(help: "Requests in flight on each connection.")
        var depth: Int = 16
        @Option(help: "Requests answered on each connection before it ends.")
        var requests: Int = 2000
        @OptionGroup var common: Common

        func validate() throws {
            guard (1...1000).contains(connections) else { throw ValidationError("--connections must be 1 to 1000") }
            guard (1...1000).contains(depth) else { throw ValidationError("--depth must be 1 to 1000") }
            guard (1...1_000_000).contains(requests) else { throw ValidationError("--requests must be 1 to 1000000") }
        }

        /// One connection's progress.
        private struct Flow {
            let socket: LabSocket
            var reader: LineReader
            var sent = 0
            var answered = 0
            /// When each request in flight was sent, oldest first.
            var sentAt: [ContinuousClock.Instant] = []
        }

        func run() throws {
            let server = try endpoint(connect, "--connect")
            let deadline = common.deadline
            // "ECHO " + 58 characters + "\n" = 64 bytes, as round-trip sends.
            let text = String(repeating: "p", count: 58)
            let request = Array("ECHO \(text)\n".utf8)
            var flows: [Flow] = []
            for index in 0..<connections {
                let socket = try LabSocket(type: SocketType.stream)
                if let failure = try socket.connect(server) {
                    throw ValidationError(
                        "connection \(index) to \(server) failed: \(String(cString: strerror(failure)))"
                    )
                }
                try socket.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                var reader = LineReader(socket: socket, deadline: deadline)
                try sendAll(socket, Array("HELLO p\(index)\n".utf8), deadline: deadline)
                guard try reader.line().hasPrefix("WELCOME") else { throw SessionFailure("HELLO not welcomed") }
                flows.append(Flow(socket: socket, reader: reader))
            }
            var samples = LatencySamples(capacity: connections * requests)
            let started = ContinuousClock.now
            func refill(_ flow: inout Flow) throws {
                let burst = min(depth - flow.sentAt.count, requests - flow.sent)
                guard burst > 0 else { return }
                try sendAll(flow.socket, (0..<burst).flatMap { _ in request }, deadline: deadline)
                let now = ContinuousClock.now
                flow.sentAt += repeatElement(now, count: burst)
                flow.sent += burst
            }
            for index in flows.indices { try refill(&flows[index]) }
            var descriptors = flows.map { pollfd(fd: $0.socket.fd, events: Int16(POLLIN), revents: 0) }
            var open = flows.count
            while open > 0 {
                guard ContinuousClock.now < deadline else {
                    throw SessionFailure("timed out with \(open) connections still waiting for answers")
                }
                _ = try systemCall("poll") { poll(&descriptors, nfds_t(descriptors.count), 100) }
                for index in flows.indices where descriptors[index].revents != 0 {
                    // Every complete answer line this read brought, then the next requests.
                    repeat {
                        let answer = try flows[index].reader.line()
                        guard answer == text else { throw SessionFailure("ECHO came back as '\(answer)'") }
                        samples.append(flows[index].sentAt.removeFirst().duration(to: .now))
                        flows[index].answered += 1
                    } while flows[index].reader.hasLine
                    try refill(&flows[index])
                    if flows[index].answered == requests {
                        descriptors[index].fd = -1
                        open -= 1
                    }
                }
            }
            let elapsed = started.duration(to: .now)
            for index in flows.indices {
                try sendAll(flows[index].socket, Array("QUIT\n".utf8), deadline: deadline)
                _ = try flows[index].reader.line()
            }
            let total = connections * requests
            let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            emit(
                "requests=\(total) connections=\(connections) depth=\(depth) seconds=\(seconds(elapsed)) "
                    + String(format: "rate_per_s=%.0f ", Double(total) / secondsTaken) + samples.summary
            )
        }
    }
}
