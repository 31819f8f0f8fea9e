import ArgumentParser
import FTCPLinux
import Foundation

/// `ftcp-passthrough`: the benchmark's ceiling for any user-space bridge. It binds an NFQUEUE
/// and accepts every packet unchanged, as fast as this machine allows: GSO super-packets
/// (NFQA_CFG_F_GSO, one pass per up to 64 KiB instead of per segment), batched reads and
/// verdicts, a 64 MiB netlink buffer. Put it on a server's INPUT and OUTPUT and the transfer's
/// rate is what user-space interception alone costs; ftcp's own work is the rest.
@main
struct PassThroughCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftcp-passthrough",
        abstract: "Accept every packet of an NFQUEUE unchanged, as fast as possible (the benchmark's ceiling).",
        discussion: """
            Example: iptables -t mangle -A INPUT -p tcp --dport 9997 -j NFQUEUE --queue-num 7410
                     iptables -t mangle -A OUTPUT -p tcp --sport 9997 -j NFQUEUE --queue-num 7410
                     ftcp-passthrough --queue 7410
            Runs until SIGINT or SIGTERM, then prints packets, bytes and GSO packets seen as one key=value line.
            """
    )

    @Option(help: "NFQUEUE number to bind.")
    var queue: UInt16 = 7410
    @Option(help: "Bytes of each packet copied to user space (65531 = whole packets, which is what a bridge needs).")
    var copyRange: UInt32 = UInt32(NetfilterQueue.maximumPayloadBytes)
    @Flag(inversion: .prefixedNo, help: "Ask for GSO super-packets (NFQA_CFG_F_GSO).")
    var gso = true
    @Option(help: "Most packets read and given verdicts per batch.")
    var batch: Int = 256

    func validate() throws {
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be between 1 and 4096") }
    }

    func run() throws {
        try TerminationSignals.install()
        let options = NetfilterQueue.Options(
            receiveBufferBytes: 64 << 20,
            copyRange: copyRange,
            acceptGSO: gso,
            maximumQueueLength: 16_384
        )
        let nfq = try NetfilterQueue.open(queue: queue, options: options)
        defer { try? nfq.close() }
        FileHandle.standardError.write(
            Data("ftcp-passthrough: bound queue \(queue) (gso \(gso), copy \(copyRange) B)\n".utf8)
        )
        var packets = 0
        var bytes = 0
        var superPackets = 0
        var verdicts: [NetfilterQueue.VerdictRequest] = []
        verdicts.reserveCapacity(batch)
        while TerminationSignals.received == nil {
            let received = try nfq.receive(maxPackets: batch, timeout: .milliseconds(100))
            guard !received.isEmpty else { continue }
            verdicts.removeAll(keepingCapacity: true)
            for packet in received {
                packets += 1
                bytes += packet.originalLength
                if packet.isGSO { superPackets += 1 }
                verdicts.append(.init(id: packet.id, .accept))
            }
            try nfq.setVerdicts(verdicts)
        }
        print("packets=\(packets) bytes=\(bytes) gso_packets=\(superPackets)")
    }
}
