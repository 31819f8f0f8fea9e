import ArgumentParser
import FTCPLinux
import Foundation

/// `ftcp-impair`: delays and reorders the packets of one NFQUEUE queue, for the namespace lab
/// (this kernel has no `sch_netem`).
@main
struct ImpairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftcp-impair",
        abstract: "Delay and reorder the packets of an NFQUEUE queue (the lab's netem substitute).",
        discussion: """
            Binds NFQUEUE queue N and holds every packet --delay-ms milliseconds before accepting it. \
            With probability --reorder-percent a packet is held an extra --reorder-gap-ms, so packets \
            queued after it overtake it (verdicts are issued out of order). At most --max-held packets \
            are held; beyond that packets are accepted at once and counted as overflowed. \
            SIGINT or SIGTERM accepts everything held, writes the statistics and exits 0.

            Send traffic to the queue with an iptables rule such as \
            `iptables -t mangle -A PREROUTING -j NFQUEUE --queue-num N`, after this program reports \
            "bound": while nothing is bound, the kernel drops queued packets.

            The statistics file holds one JSON object: received, delayed, reordered, overflowed, \
            accepted, verdictErrors, held, maximumHeld. It is written every --stats-interval-ms and at exit.

            Example: ftcp-impair --queue 100 --delay-ms 20 --reorder-percent 25 --seed 7 --stats-file /run/ftcp-lab/impair.json
            """
    )

    @Option(help: "NFQUEUE queue number to bind (0-65535).")
    var queue: UInt16

    @Option(name: .customLong("delay-ms"), help: "Hold every packet this many milliseconds.")
    var delayMilliseconds: Double = 0

    @Option(
        name: .customLong("reorder-percent"),
        help: "Percentage (0-100) of packets held an extra gap so later ones overtake them."
    )
    var reorderPercent: Double = 0

    @Option(
        name: .customLong("reorder-gap-ms"),
        help: "Extra hold for reordered packets in milliseconds (default: max(1, delay))."
    )
    var reorderGapMilliseconds: Double?

    @Option(help: "Seed of the pseudo-random generator; the same seed reproduces the same choices.")
    var seed: UInt64 = 0x5EED

    @Option(name: .customLong("stats-file"), help: "Write the counters here as JSON (periodically and at exit).")
    var statisticsFile: String?

    @Option(name: .customLong("stats-interval-ms"), help: "How often to rewrite the statistics file.")
    var statisticsIntervalMilliseconds: Int = 500

    @Option(
        name: .customLong("max-held"),
        help: "Most packets held at once; beyond that they are accepted immediately."
    )
    var maximumHeld: Int = 10_000

    @Option(name: .customLong("receive-buffer-mib"), help: "Netlink receive buffer in MiB.")
    var receiveBufferMiB: Int = 64

    @Flag(
        inversion: .prefixedNo,
        help: "Queue GSO super-packets whole (NFQA_CFG_F_GSO) instead of having the kernel segment them."
    )
    var gso = true

    func validate() throws {
        guard delayMilliseconds >= 0, delayMilliseconds <= 60_000 else {
            throw ValidationError("--delay-ms must be between 0 and 60000, not \(delayMilliseconds)")
        }
        guard reorderPercent >= 0, reorderPercent <= 100 else {
            throw ValidationError("--reorder-percent must be between 0 and 100, not \(reorderPercent)")
        }
        if let gap = reorderGapMilliseconds, !(gap > 0 && gap <= 60_000) {
            throw ValidationError("--reorder-gap-ms must be above 0 and at most 60000, not \(gap)")
        }
        guard maximumHeld >= 1, maximumHeld <= 1_000_000 else {
            throw ValidationError("--max-held must be between 1 and 1000000, not \(maximumHeld)")
        }
        guard statisticsIntervalMilliseconds >= 10 else {
            throw ValidationError("--stats-interval-ms must be at least 10")
        }
        guard receiveBufferMiB >= 1, receiveBufferMiB <= 1024 else {
            throw ValidationError("--receive-buffer-mib must be between 1 and 1024")
        }
    }

    private static func milliseconds(_ value: Double) -> Duration {
        .nanoseconds(Int64((value * 1_000_000).rounded()))
    }

    func run() throws {
        let name = "ftcp-impair[queue \(queue)]"
        func log(_ line: String) {
            FileHandle.standardError.write(Data("\(name): \(line)\n".utf8))
        }
        try TerminationSignals.install()
        let gap = reorderGapMilliseconds ?? max(1, delayMilliseconds)
        let options = NetfilterQueue.Options(
            receiveBufferBytes: receiveBufferMiB << 20,
            acceptGSO: gso,
            maximumQueueLength: UInt32(maximumHeld + 4096)
        )
        let netfilterQueue: NetfilterQueue
        do {
            netfilterQueue = try NetfilterQueue.open(queue: queue, options: options)
        } catch {
            log("\(error)")
            throw ExitCode(2)
        }
        log(
            "bound (delay \(delayMilliseconds) ms, reorder \(reorderPercent)% with gap \(gap) ms, seed \(seed), "
                + "max held \(maximumHeld), GSO \(gso), receive buffer \(netfilterQueue.effectiveReceiveBufferBytes) bytes)"
        )
        var impairer = Impairer(
            configuration: .init(
                delay: Self.milliseconds(delayMilliseconds),
                reorderProbability: reorderPercent / 100,
                reorderGap: Self.milliseconds(gap),
                seed: seed,
                maximumHeld: maximumHeld,
                statisticsFile: statisticsFile,
                statisticsInterval: .milliseconds(statisticsIntervalMilliseconds)
            ),
            queue: netfilterQueue,
            log: log
        )
        do {
            try impairer.run { TerminationSignals.received != nil }
        } catch {
            log("stopping after error: \(error)")
            impairer.writeStatistics()
            try? netfilterQueue.close()
            throw ExitCode(1)
        }
        let s = impairer.statistics
        do {
            try netfilterQueue.close()
        } catch {
            log("\(error)")
        }
        log(
            "stopped by signal \(TerminationSignals.received ?? 0): received \(s.received), delayed \(s.delayed), "
                + "reordered \(s.reordered), overflowed \(s.overflowed), verdict errors \(s.verdictErrors)"
        )
    }
}
