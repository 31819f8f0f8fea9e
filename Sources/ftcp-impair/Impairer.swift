import FTCPLinux

/// The run loop of ftcp-impair: receives queued packets, decides how long each is held,
/// and accepts each one when its time is up (verdicts therefore leave out of arrival order).
struct Impairer {
    struct Configuration {
        var delay: Duration
        var reorderProbability: Double
        var reorderGap: Duration
        var seed: UInt64
        var maximumHeld: Int
        var statisticsFile: String?
        var statisticsInterval: Duration
    }

    let configuration: Configuration
    let queue: NetfilterQueue
    var log: (String) -> Void

    private var random: SplitMix64
    private var holds = HoldQueue()
    private(set) var statistics = ImpairStatistics()
    private let clock = ContinuousClock()

    /// Longest a single wait may last, so that a termination signal is seen promptly.
    private static let longestWait = Duration.milliseconds(100)

    init(configuration: Configuration, queue: NetfilterQueue, log: @escaping (String) -> Void) {
        self.configuration = configuration
        self.queue = queue
        self.log = log
        random = SplitMix64(seed: configuration.seed)
    }

    /// Runs until `shouldStop` returns true, then accepts everything still held.
    mutating func run(shouldStop: () -> Bool) throws {
        var nextStatistics = clock.now
        writeStatistics()
        while !shouldStop() {
            var now = clock.now
            var wait = min(Self.longestWait, now.duration(to: nextStatistics))
            if let due = holds.nextDue {
                wait = min(wait, now.duration(to: due))
            }
            guard let packets = try receive(timeout: max(wait, .zero)) else { continue }
            now = clock.now
            var verdicts: [NetfilterQueue.VerdictRequest] = []
            for packet in packets {
                statistics.received += 1
                if holds.count >= configuration.maximumHeld {
                    statistics.overflowed += 1
                    verdicts.append(.init(id: packet.id, .accept))
                    continue
                }
                let late =
                    configuration.reorderProbability > 0
                    && random.nextUnit() < configuration.reorderProbability
                if late {
                    statistics.reordered += 1
                    statistics.delayed += 1
                    holds.hold(
                        .init(id: packet.id, due: now + configuration.delay + configuration.reorderGap),
                        late: true
                    )
                } else if configuration.delay > .zero {
                    statistics.delayed += 1
                    holds.hold(.init(id: packet.id, due: now + configuration.delay), late: false)
                } else {
                    verdicts.append(.init(id: packet.id, .accept))
                }
            }
            statistics.maximumHeld = max(statistics.maximumHeld, holds.count)
            for entry in holds.popDue(now: clock.now) {
                verdicts.append(.init(id: entry.id, .accept))
            }
            try issue(verdicts)
            if clock.now >= nextStatistics {
                writeStatistics()
                nextStatistics = clock.now + configuration.statisticsInterval
            }
        }
        try issue(holds.removeAll().map { .init(id: $0.id, .accept) })
        writeStatistics()
    }

    /// Receives a batch; returns nil (after counting it) when the kernel reported a rejected verdict.
    private mutating func receive(timeout: Duration) throws(NetfilterQueueError) -> [NetfilterQueue.Packet]? {
        do {
            return try queue.receive(maxPackets: 512, timeout: timeout)
        } catch {
            guard error.code == .unknownPacketID || error.code == .kernelRejected else { throw error }
            statistics.verdictErrors += 1
            log("kernel rejected a verdict: \(error)")
            return nil
        }
    }

    private mutating func issue(_ verdicts: [NetfilterQueue.VerdictRequest]) throws {
        guard !verdicts.isEmpty else { return }
        try queue.setVerdicts(verdicts)
        statistics.accepted += verdicts.count
        statistics.held = holds.count
    }

    /// Writes the statistics file if one was asked for; a failure is logged, not fatal.
    mutating func writeStatistics() {
        statistics.held = holds.count
        guard let path = configuration.statisticsFile else { return }
        do {
            try statistics.write(to: path)
        } catch {
            log("cannot write statistics to \(path): \(error)")
        }
    }
}
