import Foundation
import Glibc
import Testing

/// Two network namespaces, `ftcp-io-a` and `ftcp-io-b`, joined by a veth pair
/// (`ioa0` 10.97.0.1/24 in a, `iob0` 10.97.0.2/24 in b), for the tests that need root.
///
/// Sockets and captures are opened inside a namespace by switching the calling thread into it
/// (`setns`) and back; what was opened stays in the namespace it was opened in.
final class NetworkNamespacePair {
    static let namespaceA = "ftcp-io-a"
    static let namespaceB = "ftcp-io-b"
    static let interfaceA = "ioa0"
    static let interfaceB = "iob0"
    static let addressA = "10.97.0.1"
    static let addressB = "10.97.0.2"

    /// Whether these tests can run: root, with the `ip` tool.
    static var isAvailable: Bool {
        geteuid() == 0 && ipTool != nil
    }

    private static var ipTool: String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { access($0, X_OK) == 0 }
    }

    init() throws {
        Self.removeNamespaces()
        try Self.ip("netns", "add", Self.namespaceA)
        try Self.ip("netns", "add", Self.namespaceB)
        try Self.ip(
            "link",
            "add",
            Self.interfaceA,
            "netns",
            Self.namespaceA,
            "type",
            "veth",
            "peer",
            "name",
            Self.interfaceB,
            "netns",
            Self.namespaceB
        )
        for (namespace, interface, address) in [
            (Self.namespaceA, Self.interfaceA, Self.addressA), (Self.namespaceB, Self.interfaceB, Self.addressB),
        ] {
            try Self.ip("-n", namespace, "address", "add", "\(address)/24", "dev", interface)
            try Self.ip("-n", namespace, "link", "set", "dev", interface, "up")
            try Self.ip("-n", namespace, "link", "set", "dev", "lo", "up")
        }
    }

    deinit { Self.removeNamespaces() }

    private static func removeNamespaces() {
        for namespace in [namespaceA, namespaceB] {
            try? ip("netns", "delete", namespace, quietly: true)
        }
    }

    /// Runs `ip` with the arguments; throws with its output when it fails.
    static func ip(_ arguments: String..., quietly: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipTool!)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus != 0 {
            struct CommandFailed: Error, CustomStringConvertible { var description: String }
            throw CommandFailed(description: "ip \(arguments.joined(separator: " ")) failed: \(text)")
        }
    }

    /// Runs `body` with the calling thread in `namespace`, then returns the thread to where it was.
    func inside<Result>(_ namespace: String, _ body: () throws -> Result) throws -> Result {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        try #require(original >= 0, "cannot open this thread's network namespace")
        defer { close(original) }
        let target = open("/var/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        try #require(target >= 0, "cannot open namespace \(namespace)")
        defer { close(target) }
        try #require(enterNamespace(target, cloneNewNet) == 0, "setns(\(namespace)) failed: errno \(errno)")
        defer { precondition(enterNamespace(original, cloneNewNet) == 0, "cannot return to the original namespace") }
        return try body()
    }
}

/// `CLONE_NEWNET` from <sched.h>.
private let cloneNewNet: Int32 = 0x4000_0000

/// setns(2), looked up at run time: Swift's Glibc module does not export it.
private let enterNamespace: @convention(c) (Int32, Int32) -> Int32 = {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { fatalError("the C library has no setns") }
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
}()
