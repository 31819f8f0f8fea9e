/// Durations measured one by one (connect() calls, request/response exchanges), summarized as
/// the labtool's result fields: p50, p99 and max in microseconds.
struct LatencySamples {
    private var microseconds: [Double] = []

    init(capacity: Int) {
        microseconds.reserveCapacity(capacity)
    }

    /// How many durations were measured.
    var count: Int { microseconds.count }

    mutating func append(_ elapsed: Duration) {
        microseconds.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
    }

    /// "p50_us=… p99_us=… max_us=…"
    var summary: String {
        let sorted = microseconds.sorted()
        guard let largest = sorted.last else { return "p50_us=nan p99_us=nan max_us=nan" }
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        return String(format: "p50_us=%.1f p99_us=%.1f max_us=%.1f", percentile(0.5), percentile(0.99), largest)
    }
}
