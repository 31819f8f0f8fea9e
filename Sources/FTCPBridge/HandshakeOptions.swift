import FTCPWire

/// The options a SYN or SYN-ACK carried, as the merge needs them.
public struct HandshakeOptions: Equatable, Sendable {
    public var maximumSegmentSize: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var timestamps: (value: UInt32, echoReply: UInt32)?
    /// The unscaled window of the SYN or SYN-ACK itself.
    public var window: UInt16

    public init(
        maximumSegmentSize: UInt16?,
        windowScale: UInt8?,
        sackPermitted: Bool,
        timestamps: (value: UInt32, echoReply: UInt32)?,
        window: UInt16
    ) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.timestamps = timestamps
        self.window = window
    }

    init(_ segment: TCPSegment) {
        self.init(
            maximumSegmentSize: segment.maximumSegmentSize,
            windowScale: segment.windowScale,
            sackPermitted: segment.isSACKPermitted,
            timestamps: segment.timestamps,
            window: segment.window
        )
    }

    public static func == (lhs: HandshakeOptions, rhs: HandshakeOptions) -> Bool {
        lhs.maximumSegmentSize == rhs.maximumSegmentSize && lhs.windowScale == rhs.windowScale
            && lhs.sackPermitted == rhs.sackPermitted && lhs.window == rhs.window
            && lhs.timestamps?.value == rhs.timestamps?.value && lhs.timestamps?.echoReply == rhs.timestamps?.echoReply
    }
}

/// Set operations on SACK blocks (client sequence space).
enum SACKBlocks {
    /// The byte ranges above `acknowledged` that both servers hold, as SACK
    /// blocks. A server holds everything below its own acknowledgment and the
    /// blocks it reported; only bytes both hold may be reported to the client,
    /// which will then not retransmit them.
    static func shared(
        primary: (acknowledged: SequenceNumber, blocks: [SACKBlock]),
        secondary: (acknowledged: SequenceNumber, blocks: [SACKBlock]),
        above acknowledged: SequenceNumber,
        limit: Int
    ) -> [SACKBlock] {
        func holdings(_ server: (acknowledged: SequenceNumber, blocks: [SACKBlock])) -> [SACKBlock] {
            var ranges = server.blocks.filter { acknowledged < $0.right }
            if acknowledged < server.acknowledged {
                ranges.append(SACKBlock(left: acknowledged, right: server.acknowledged))
            }
            return ranges
        }
        // The lagging server's blocks come first, so the client sees its newest block first.
        let ordered =
            primary.acknowledged <= secondary.acknowledged
            ? intersection(holdings(primary), holdings(secondary), limit: limit)
            : intersection(holdings(secondary), holdings(primary), limit: limit)
        return ordered.filter { acknowledged < $0.left }
    }

    /// The byte ranges that appear in both lists, at most `limit` of them.
    static func intersection(_ a: [SACKBlock], _ b: [SACKBlock], limit: Int) -> [SACKBlock] {
        var result: [SACKBlock] = []
        for x in a {
            for y in b {
                let left = SequenceNumber.later(x.left, y.left)
                let right = SequenceNumber.earlier(x.right, y.right)
                if left < right && !result.contains(SACKBlock(left: left, right: right)) {
                    result.append(SACKBlock(left: left, right: right))
                }
            }
        }
        return Array(result.prefix(limit))
    }
}
