import FTCPBridge
import FTCPLinux

/// When to send gratuitous ARPs for the service address: a round after the address is claimed
/// (5, 100 ms apart), and a quick one (3, 20 ms apart) when another host is seen using it.
/// Pure: the daemon asks how many are due and sends them.
struct AddressAnnouncer {
    private var round: (schedule: AnnouncementSchedule, start: MonotonicTime, sent: Int)?

    var isAnnouncing: Bool { round != nil }

    /// Starts a round (replacing one under way); `alreadySent` of it left before `start`.
    mutating func start(_ schedule: AnnouncementSchedule, at start: MonotonicTime, alreadySent: Int = 0) {
        round = alreadySent >= schedule.count ? nil : (schedule, start, alreadySent)
    }

    /// Announces again quickly, unless a round is under way.
    mutating func reannounce(now: MonotonicTime) {
        guard round == nil else { return }
        start(AnnouncementSchedule(count: 3, intervalMilliseconds: 20), at: now)
    }

    /// How many announcements to send now (counted as sent).
    mutating func due(now: MonotonicTime) -> Int {
        guard var current = round else { return 0 }
        let due = current.schedule.due(sent: current.sent, elapsedMilliseconds: now.milliseconds(since: current.start))
        current.sent = max(current.sent, due.upperBound)
        round = current.sent >= current.schedule.count ? nil : current
        return due.count
    }
}
