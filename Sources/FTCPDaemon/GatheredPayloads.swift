import FTCPWire

/// Most segments one gathered send joins: one buffer each for the kernel (it takes at most
/// 1,024), and one nested access each while their views are taken.
let maximumSegmentsPerGatheredSend = 64

extension Array where Element == TCPPacketFields {
    /// Calls `body` with views of the payloads of the segments in `range`, in order, valid only
    /// during the call: a gathering send reads them where they lie instead of from a joined copy.
    /// `range` holds at most ``maximumSegmentsPerGatheredSend`` segments.
    func withPayloads<Result>(in range: Range<Int>, _ body: ([UnsafeRawBufferPointer]) -> Result) -> Result {
        precondition(range.count <= maximumSegmentsPerGatheredSend)
        var views: [UnsafeRawBufferPointer] = []
        views.reserveCapacity(range.count)
        func nest(_ index: Int) -> Result {
            guard index < range.upperBound else { return body(views) }
            return self[index].payload.withUnsafeBytes { payload in
                views.append(payload)
                return nest(index + 1)
            }
        }
        return nest(range.lowerBound)
    }
}
