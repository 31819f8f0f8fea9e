/// A sliding window over one sender's message counters: accepts each counter at most once, in any
/// order, as long as it is no more than ``size`` - 1 behind the newest counter accepted.
///
/// Counters older than the window are refused, even if they were never seen: the window cannot
/// tell them from replays. The state is the newest counter and one bit per counter in the window,
/// so it costs the same whatever the counters.
public struct ReplayWindow: Equatable, Hashable, Sendable {
    /// How many counters, the newest included, the window remembers.
    public static let size = 1024
    private static let wordCount = size / 64

    /// The newest counter recorded; nil until one is.
    public private(set) var newest: UInt64?
    /// Bit `i` (word `i / 64`, bit `i % 64`) is set when counter `newest - i` was recorded.
    private var seen: [UInt64]

    /// What the window says about a counter.
    public enum Verdict: Equatable, Hashable, Sendable {
        /// Never seen and inside (or ahead of) the window.
        case fresh
        /// Already recorded.
        case duplicate
        /// Too far behind the newest counter to tell.
        case tooOld
    }

    /// An empty window: every counter is fresh.
    public init() {
        newest = nil
        seen = Array(repeating: 0, count: Self.wordCount)
    }

    /// Whether `counter` would be accepted, without recording it.
    public func verdict(for counter: UInt64) -> Verdict {
        guard let newest, counter <= newest else { return .fresh }
        let distance = newest - counter
        guard distance < UInt64(Self.size) else { return .tooOld }
        return isSet(Int(distance)) ? .duplicate : .fresh
    }

    /// Records `counter` if it is fresh and reports whether it was.
    @discardableResult
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard verdict(for: counter) == .fresh else { return false }
        guard let newest, counter <= newest else {
            advance(to: counter)
            return true
        }
        set(Int(newest - counter))
        return true
    }

    /// Makes `counter` (greater than ``newest``, or the first) the newest and records it.
    private mutating func advance(to counter: UInt64) {
        if let newest {
            shift(by: counter - newest)
        }
        newest = counter
        set(0)
    }

    /// Moves every recorded bit `distance` places further from the newest, forgetting what
    /// falls out of the window.
    private mutating func shift(by distance: UInt64) {
        guard distance < UInt64(Self.size) else {
            for word in seen.indices { seen[word] = 0 }
            return
        }
        let wordShift = Int(distance / 64)
        let bitShift = UInt64(distance % 64)
        for word in stride(from: Self.wordCount - 1, through: 0, by: -1) {
            let source = word - wordShift
            var value: UInt64 = source >= 0 ? seen[source] << bitShift : 0
            if bitShift != 0, source - 1 >= 0 {
                value |= seen[source - 1] >> (64 - bitShift)
            }
            seen[word] = value
        }
    }

    private func isSet(_ index: Int) -> Bool {
        seen[index / 64] & (1 << UInt64(index % 64)) != 0
    }

    private mutating func set(_ index: Int) {
        seen[index / 64] |= 1 << UInt64(index % 64)
    }
}
