/// Structured values read from a fuzzer's input, front to back.
///
/// Every read succeeds: past the end of the input it yields zeros (and empty arrays), so any
/// input decodes to some sequence of values and libFuzzer's mutations of one field leave the
/// fields before it alone. Compiled into every target (see deploy/fuzz.sh).
struct FuzzInput {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The input handed to `LLVMFuzzerTestOneInput`.
    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        self.init(Array(UnsafeBufferPointer(start: data, count: size)))
    }

    var isExhausted: Bool { offset >= bytes.count }
    var remaining: Int { max(0, bytes.count - offset) }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    mutating func uint16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }

    mutating func uint32() -> UInt32 { UInt32(uint16()) << 16 | UInt32(uint16()) }

    mutating func uint64() -> UInt64 { UInt64(uint32()) << 32 | UInt64(uint32()) }

    /// A number in `0..<count` (0 when `count` is 0), from one byte.
    mutating func index(_ count: Int) -> Int {
        count > 0 ? Int(byte()) % count : 0
    }

    /// One of `choices`, which must not be empty.
    mutating func pick<T>(_ choices: [T]) -> T {
        choices[index(choices.count)]
    }

    /// The next `count` bytes, fewer if the input ends first.
    mutating func bytes(_ count: Int) -> [UInt8] {
        let end = offset + min(max(0, count), remaining)
        defer { offset = end }
        return Array(bytes[min(offset, bytes.count)..<end])
    }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] { bytes(remaining) }
}

/// Stops the run with `message` when a property does not hold. Unlike `precondition`, whose
/// message an optimised build leaves out, `fatalError` prints it, so libFuzzer's report of the
/// input says which property failed.
func require(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() { fatalError("property violated: \(message())", file: file, line: line) }
}
