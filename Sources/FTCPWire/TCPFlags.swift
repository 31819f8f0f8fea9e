/// The control bits of a TCP header (RFC 9293 §3.1, RFC 3168 for CWR/ECE).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

extension TCPFlags: CustomStringConvertible {
    /// tcpdump-style letters: `S`, `F`, `R`, `P`, `.` for ACK, `U`, `E`, `W`.
    public var description: String {
        var text = ""
        if contains(.syn) { text += "S" }
        if contains(.fin) { text += "F" }
        if contains(.rst) { text += "R" }
        if contains(.psh) { text += "P" }
        if contains(.urg) { text += "U" }
        if contains(.ece) { text += "E" }
        if contains(.cwr) { text += "W" }
        if contains(.ack) { text += "." }
        return text.isEmpty ? "none" : text
    }
}
