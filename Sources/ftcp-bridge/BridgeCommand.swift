import ArgumentParser

/// `ftcp-bridge`: transparent TCP connection failover for Linux.
@main
struct BridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftcp-bridge",
        abstract: "Transparent TCP connection failover: keep clients' TCP connections when the primary server dies.",
        discussion: """
            Two servers run the same deterministic application on their own kernel TCP. The primary's bridge \
            merges both kernels' output so the client sees one connection, in the secondary's sequence space; \
            the secondary's bridge feeds it the client's segments captured from the wire. Run `primary` on the \
            server that owns the service address and `secondary` on the other, with the same --port list and \
            the same key file (make one with `keygen`). Both need root.
            """,
        subcommands: [
            PrimaryCommand.self, SecondaryCommand.self, SwitchoverCommand.self, StatusCommand.self,
            CheckConfigCommand.self, RulesCommand.self, KeygenCommand.self, LatencyReportCommand.self,
        ]
    )

    /// The config file's settings go in front of the command line's before parsing.
    static func main() {
        let arguments: [String]
        do {
            arguments = try ConfigLoader.expand(Array(CommandLine.arguments.dropFirst()))
        } catch {
            exit(withError: error)
        }
        main(arguments)
    }
}
