import Foundation

/// The counters ftcp-impair keeps and writes to its statistics file as one JSON object.
struct ImpairStatistics {
    /// Packets the queue delivered.
    var received = 0
    /// Packets held before their verdict (base delay, reorder gap or both).
    var delayed = 0
    /// Packets held the extra reorder gap, so that later packets overtake them.
    var reordered = 0
    /// Packets accepted at once because the hold limit was reached.
    var overflowed = 0
    /// Accept verdicts issued.
    var accepted = 0
    /// Verdicts the kernel rejected.
    var verdictErrors = 0
    /// Packets held right now.
    var held = 0
    /// The most packets held at one time.
    var maximumHeld = 0

    var json: String {
        "{\"received\":\(received),\"delayed\":\(delayed),\"reordered\":\(reordered),"
            + "\"overflowed\":\(overflowed),\"accepted\":\(accepted),\"verdictErrors\":\(verdictErrors),"
            + "\"held\":\(held),\"maximumHeld\":\(maximumHeld)}\n"
    }

    /// Writes the counters to `path` atomically (a reader never sees half a file).
    func write(to path: String) throws {
        try Data(json.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
