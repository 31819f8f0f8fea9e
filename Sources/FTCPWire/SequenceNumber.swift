/// A TCP sequence (or acknowledgment) number with modulo-2^32 arithmetic.
///
/// Comparisons follow RFC 9293 §3.4: `a < b` means `b` lies less than 2^31
/// ahead of `a` on the circle. That relation is meaningful only for numbers
/// inside one connection's window, which is why this type is not `Comparable`:
/// it is not a total order, and sorting raw numbers across a wrap is a bug.
public struct SequenceNumber: Hashable, Sendable {
    /// The number as carried on the wire.
    public var rawValue: UInt32

    @inlinable
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// The number `count` bytes further on, wrapping past 2^32.
    @inlinable
    public static func + (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ rhs)
    }

    /// The number `count` bytes earlier, wrapping below 0.
    @inlinable
    public static func - (lhs: SequenceNumber, rhs: UInt32) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &- rhs)
    }

    @inlinable
    public static func += (lhs: inout SequenceNumber, rhs: UInt32) { lhs = lhs + rhs }

    /// Signed distance from `self` to `other` (positive when `other` is later),
    /// valid while the two are less than 2^31 apart.
    @inlinable
    public func distance(to other: SequenceNumber) -> Int32 {
        Int32(bitPattern: other.rawValue &- rawValue)
    }

    /// The raw modulo-2^32 difference `self − other`, for offsets between two
    /// sequence spaces (such as Δ = ISN_P − ISN_S) that may be any value.
    @inlinable
    public func offset(from other: SequenceNumber) -> UInt32 {
        rawValue &- other.rawValue
    }

    @inlinable
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool {
        lhs.distance(to: rhs) > 0
    }

    @inlinable
    public static func <= (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool {
        lhs.distance(to: rhs) >= 0
    }

    @inlinable
    public static func > (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { rhs < lhs }

    @inlinable
    public static func >= (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { rhs <= lhs }

    /// The later of two numbers in modulo order.
    @inlinable
    public static func later(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? b : a }

    /// The earlier of two numbers in modulo order.
    @inlinable
    public static func earlier(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? a : b }

    /// Whether `self` lies in the half-open range `[start, end)` on the circle.
    @inlinable
    public func isIn(from start: SequenceNumber, upTo end: SequenceNumber) -> Bool {
        start <= self && self < end
    }
}

extension SequenceNumber: CustomStringConvertible {
    public var description: String { String(rawValue) }
}
