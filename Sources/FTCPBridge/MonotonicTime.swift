/// A point on a monotonic clock, in nanoseconds since an arbitrary origin.
///
/// The bridge core never reads a clock: the shell passes the current time
/// with every event, so tests drive time by hand.
public struct MonotonicTime: Hashable, Comparable, Sendable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func milliseconds(_ ms: UInt64) -> MonotonicTime { MonotonicTime(nanoseconds: ms * 1_000_000) }
    public static func seconds(_ s: UInt64) -> MonotonicTime { MonotonicTime(nanoseconds: s * 1_000_000_000) }
    public static let zero = MonotonicTime(nanoseconds: 0)

    public static func < (lhs: MonotonicTime, rhs: MonotonicTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// `self` plus a duration in milliseconds.
    public func adding(milliseconds ms: UInt64) -> MonotonicTime {
        MonotonicTime(nanoseconds: nanoseconds + ms * 1_000_000)
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    public func milliseconds(since earlier: MonotonicTime) -> UInt64 {
        nanoseconds >= earlier.nanoseconds ? (nanoseconds - earlier.nanoseconds) / 1_000_000 : 0
    }
}
