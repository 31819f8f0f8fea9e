/// How long a download took to get back to its speed after its longest stall (a failover's cut):
/// the longest gap alone hides the slow stretch after it, while the kernels' congestion windows
/// and the bridges' queues refill.
///
/// The speed before is the delivery rate over the ``before`` window that ends where the stall
/// begins; the download is back once the bytes delivered in some ``window`` after the stall are
/// at least ``fraction`` of what that rate delivers in as long. The figure is measured from the
/// stall's start (the last delivery before the cut) to the end of that window.
enum DeliveryRecovery {
    static let before = Duration.milliseconds(200)
    static let window = Duration.milliseconds(50)
    static let fraction = 0.9

    /// Milliseconds from the longest stall's start until the rate was back, or nil when there is
    /// no stall with `before` of delivery ahead of it, or the download ended before its rate
    /// came back. `samples` are (time since start, bytes delivered so far), in time order.
    static func milliseconds(_ samples: [(Duration, UInt64)]) -> Double? {
        guard samples.count >= 3 else { return nil }
        var gapEnd = 1
        for index in 1..<samples.count
        where samples[index].0 - samples[index - 1].0 > samples[gapEnd].0 - samples[gapEnd - 1].0 {
            gapEnd = index
        }
        let stallStart = samples[gapEnd - 1]
        guard stallStart.0 >= before else { return nil }
        let earlier = samples[..<gapEnd].last { $0.0 <= stallStart.0 - before } ?? samples[0]
        let span = seconds(of: stallStart.0 - earlier.0)
        guard span > 0 else { return nil }
        let rate = Double(stallStart.1 - earlier.1) / span
        // The first sample after the stall at which the delivery over the `window` (or a little
        // more) before it, all after the stall, is back to `fraction` of that rate: so the figure
        // is at least the stall plus one window.
        var base = gapEnd
        for index in gapEnd..<samples.count {
            while base + 1 < index && samples[base + 1].0 <= samples[index].0 - window { base += 1 }
            let elapsed = samples[index].0 - samples[base].0
            guard elapsed >= window else { continue }
            if Double(samples[index].1 - samples[base].1) / seconds(of: elapsed) >= rate * fraction {
                return seconds(of: samples[index].0 - stallStart.0) * 1000
            }
        }
        return nil
    }

    private static func seconds(of duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
