import Foundation

/// The answer to a control request other than `status` (a switchover), as JSON.
struct ControlAnswer: Codable, Equatable {
    /// The request as received.
    var request: String
    /// `started`, `requested` (passed on to the primary), `refused` or `unknown-request`.
    var outcome: String
    /// Why it was refused, or what happens next, in a sentence.
    var detail: String

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func unknown(_ request: String) -> ControlAnswer {
        ControlAnswer(
            request: request,
            outcome: "unknown-request",
            detail: "this bridge answers 'status' and 'switchover'"
        )
    }
}
