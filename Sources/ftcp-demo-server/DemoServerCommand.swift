import ArgumentParser
import FTCPDemo
import Glibc
import Synchronization

/// The last termination signal received (0: none), written from the signal handler.
private let stopSignal = Atomic<Int32>(0)

/// The demo application that runs identically on the primary and the secondary replica: a
/// stateful, deterministic line protocol (see `DemoSession`) served on one TCP port.
@main
struct DemoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftcp-demo-server",
        abstract: "Serve the deterministic ftcp demo line protocol over TCP.",
        discussion: """
            Commands, one per line: HELLO name, ADD n, ECHO text, SEND n (n bytes of the \
            deterministic stream), RECV n (then n raw bytes; answers with their SHA-256), QUIT. \
            The same input gives the same output on every replica. SIGTERM or SIGINT stops the \
            server (exit status 0).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address and port to listen on.", valueName: "address:port"))
    var listen = "0.0.0.0:9999"

    @Option(name: .long, help: "The most connections served at once.")
    var maximumConnections = 1024

    func validate() throws {
        guard DemoServerAddress(listen) != nil else {
            throw ValidationError("--listen must be an IPv4 address and a port, like 0.0.0.0:9999 (got \"\(listen)\")")
        }
        guard (1...65_536).contains(maximumConnections) else {
            throw ValidationError("--maximum-connections must be between 1 and 65536")
        }
    }

    func run() throws {
        let address = DemoServerAddress(listen)!
        for signalNumber in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in stopSignal.store(number, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signalNumber, &action, nil)
        }
        signal(SIGPIPE, SIG_IGN)

        let server = try DemoServer(address: address, maximumConnections: maximumConnections) { line in
            printError("ftcp-demo-server: \(line)")
        }
        printError("ftcp-demo-server: listening on \(DemoServerAddress(host: address.host, port: server.port))")
        try server.run { stopSignal.load(ordering: .relaxed) != 0 }
        printError("ftcp-demo-server: stopped by signal \(stopSignal.load(ordering: .relaxed))")
    }
}

/// Writes one line to standard error.
private func printError(_ line: String) {
    var text = line
    text += "\n"
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
