import Glibc

/// Calls `body` with the I/O vectors of one gathering send (`sendmsg`): `first`, then `second`
/// if there is one, then each non-empty piece of `pieces`, in order. The vectors live on the
/// stack for the call (a send of one packet, or of a run of segments, allocates nothing).
func withGatheredVectors<Result, Failure: Error>(
    _ first: UnsafeRawBufferPointer,
    _ second: UnsafeRawBufferPointer? = nil,
    pieces: [UnsafeRawBufferPointer],
    _ body: (UnsafeMutableBufferPointer<iovec>) throws(Failure) -> Result
) throws(Failure) -> Result {
    try withUnsafeTemporaryAllocation(of: iovec.self, capacity: pieces.count + 2) { vectors throws(Failure) in
        var count = 0
        func append(_ buffer: UnsafeRawBufferPointer) {
            vectors[count] = iovec(
                iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                iov_len: buffer.count
            )
            count += 1
        }
        append(first)
        if let second { append(second) }
        for piece in pieces where !piece.isEmpty { append(piece) }
        return try body(UnsafeMutableBufferPointer(rebasing: vectors[0..<count]))
    }
}
