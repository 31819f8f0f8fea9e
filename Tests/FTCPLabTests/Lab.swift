import Foundation
import XCTest

/// The namespace lab as the tests drive it: deploy/lab.sh for setup, impairment and teardown,
/// ftcp-labtool for traffic, tcpdump for captures. Every process it starts is stopped by
/// ``tearDown()``, which also runs `lab.sh down` — whatever the test did.
final class Lab {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let hosts = ["client": "10.80.0.10", "primary": "10.80.0.1", "secondary": "10.80.0.2"]

    let script: String
    let impairBinary: String
    let labtool: String
    let artifacts: URL
    private var started: [LabProcess] = []
    private var counter = 0

    /// Throws XCTSkip when the lab cannot run here at all (not root, no `ip`).
    static func skipUnlessRunnable() throws {
        if geteuid() != 0 {
            throw XCTSkip("the namespace lab needs root (network namespaces, iptables, tc): run the tests as root")
        }
        if LabProcess.locate("ip") == nil {
            throw XCTSkip("the namespace lab needs iproute2's `ip`, which is not installed")
        }
    }

    /// Binary from the environment variable `variable`, else `.build/release/<name>`.
    static func binary(_ name: String, variable: String) throws -> String {
        let path =
            ProcessInfo.processInfo.environment[variable]
            ?? repositoryRoot.appendingPathComponent(".build/release/\(name)").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LabError(
                "\(path) is missing: build it first with `swift build -c release --product \(name)` "
                    + "(in \(repositoryRoot.path)), or set \(variable)=/path/to/\(name)"
            )
        }
        return path
    }

    init(testName: String) throws {
        script = Self.repositoryRoot.appendingPathComponent("deploy/lab.sh").path
        impairBinary = try Self.binary("ftcp-impair", variable: "FTCP_IMPAIR")
        labtool = try Self.binary("ftcp-labtool", variable: "FTCP_LABTOOL")
        for tool in ["tcpdump", "tc", "iptables", "timeout"] where LabProcess.locate(tool) == nil {
            throw LabError(
                "\(tool) is not installed; the lab tests need it (apt-get install tcpdump iproute2 iptables coreutils)"
            )
        }
        Self.removeStaleArtifacts()
        let safe = testName.filter { $0.isLetter || $0.isNumber }
        artifacts = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(Self.artifactPrefix)\(getpid())-\(safe)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
    }

    private static let artifactPrefix = "ftcp-lab-"

    /// Removes artifact directories left by a test process that was killed (its pid is gone).
    private static func removeStaleArtifacts() {
        let temporary = FileManager.default.temporaryDirectory
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? []
        for entry in entries where entry.hasPrefix(artifactPrefix) {
            let pidText = entry.dropFirst(artifactPrefix.count).prefix { $0.isNumber }
            guard let pid = Int32(pidText), pid != getpid() else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH {
                try? FileManager.default.removeItem(at: temporary.appendingPathComponent(entry))
            }
        }
    }

    private func process(_ name: String, _ executable: String, _ arguments: [String]) throws -> LabProcess {
        counter += 1
        let process = try LabProcess(
            "\(counter)-\(name)",
            executable,
            arguments,
            directory: artifacts,
            environment: ["FTCP_IMPAIR": impairBinary]
        )
        started.append(process)
        return process
    }

    /// Runs `deploy/lab.sh ARGS`; throws with its output when it fails.
    @discardableResult
    func labScript(_ arguments: String..., timeout: Duration = .seconds(30)) throws -> String {
        let run = try process("lab-" + arguments.joined(separator: "-"), script, arguments)
        let status = try run.run(timeout: timeout)
        guard status == 0 else {
            throw LabError(
                "deploy/lab.sh \(arguments.joined(separator: " ")) failed (status \(status.map(String.init) ?? "timeout")):\n\(run.output)\n\(run.errors)"
            )
        }
        return run.output
    }

    /// Runs `deploy/lab.sh ARGS` and returns status and output without judging them.
    func labScriptResult(_ arguments: [String], environment: [String: String]) throws -> (
        status: Int32?, output: String
    ) {
        counter += 1
        let run = try LabProcess("\(counter)-lab", script, arguments, directory: artifacts, environment: environment)
        started.append(run)
        let status = try run.run(timeout: .seconds(30))
        return (status, run.output + run.errors)
    }

    /// Runs `deploy/bench.sh ARGS` (which brings its own lab up and down) and returns status and output.
    func benchmark(_ arguments: [String], environment: [String: String], timeout: Duration) throws -> (
        status: Int32?, output: String
    ) {
        counter += 1
        // A test takes its own lab down first (the benchmark brings its own up), which removed
        // the artifacts folder the run's output goes to.
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let bench = Self.repositoryRoot.appendingPathComponent("deploy/bench.sh").path
        let run = try LabProcess("\(counter)-bench", bench, arguments, directory: artifacts, environment: environment)
        started.append(run)
        let status = try run.run(timeout: timeout)
        return (status, run.output + run.errors)
    }

    func up() throws {
        try labScript("down")
        try labScript("up")
    }

    func impair(_ host: String, _ specification: String) throws {
        try labScript("impair", host, specification)
    }

    /// The counters ftcp-impair last wrote for `host` (the run directory's impair-HOST.json).
    ///
    /// ftcp-impair rewrites the file every 500 ms, so a session shorter than that can finish
    /// before the file shows any packet: this rereads it for up to two seconds until it does.
    func impairStatistics(host: String) throws -> [String: Int] {
        let runDirectory = ProcessInfo.processInfo.environment["FTCP_LAB_RUN_DIR"] ?? "/run/ftcp-lab"
        let deadline = Date().addingTimeInterval(2)
        while true {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(runDirectory)/impair-\(host).json"))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw LabError("impair-\(host).json is not a JSON object")
            }
            let counters = object.compactMapValues { ($0 as? NSNumber)?.intValue }
            if (counters["received"] ?? 0) > 0 || Date() >= deadline {
                return counters
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// Stops every process the test started, then takes the lab down. Never throws.
    func tearDown() {
        for process in started.reversed() {
            process.stop(grace: .seconds(2))
        }
        started.removeAll()
        do {
            let down = try LabProcess(
                "teardown-down",
                script,
                ["down"],
                directory: artifacts,
                environment: ["FTCP_IMPAIR": impairBinary]
            )
            if try down.run(timeout: .seconds(30)) != 0 {
                print("lab.sh down failed during teardown:\n\(down.output)\n\(down.errors)")
            }
        } catch {
            print("lab.sh down could not run during teardown: \(error)")
        }
        if ProcessInfo.processInfo.environment["FTCP_LAB_KEEP_ARTIFACTS"] == nil {
            try? FileManager.default.removeItem(at: artifacts)
        } else {
            print("lab artifacts kept in \(artifacts.path)")
        }
    }

    /// Starts a program in a host's namespace in the background.
    func background(_ host: String, _ name: String, _ arguments: [String]) throws -> LabProcess {
        let run = try process(name, "ip", ["netns", "exec", "ftcp-\(host)"] + arguments)
        try run.start()
        return run
    }

    /// Runs a program in a host's namespace to completion and returns its exit status (nil on
    /// a timeout) with the process, whatever the status.
    func run(_ host: String, _ name: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws -> (
        Int32?, LabProcess
    ) {
        let run = try process(name, "ip", ["netns", "exec", "ftcp-\(host)"] + arguments)
        return (try run.run(timeout: timeout), run)
    }

    /// Runs a program in a host's namespace to completion; throws when it fails or times out.
    func foreground(_ host: String, _ name: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws
        -> LabProcess
    {
        let run = try process(name, "ip", ["netns", "exec", "ftcp-\(host)"] + arguments)
        let status = try run.run(timeout: timeout)
        guard status == 0 else {
            throw LabError(
                "\(name) in \(host) failed (status \(status.map(String.init) ?? "timeout")): \(run.output) \(run.errors)"
            )
        }
        return run
    }

    // MARK: Captures

    /// A running tcpdump on a host's eth0 (promiscuous: it also sees frames for other hosts).
    /// It runs in immediate mode: otherwise frames still in an unfinished ring-buffer block are
    /// lost when it is stopped (seen here: 300 of 2000 datagrams).
    struct Capture {
        let host: String
        let file: String
        let process: LabProcess

        /// Stops tcpdump (it flushes on SIGINT) and reads the file.
        func finish() throws -> PcapFile {
            process.stop(grace: .seconds(5))
            return try PcapFile(contentsOf: file)
        }
    }

    func startCapture(on host: String, filter: String, snapLength: Int = 256) throws -> Capture {
        counter += 1
        let file = artifacts.appendingPathComponent("\(counter)-\(host).pcap").path
        let run = try background(
            host,
            "tcpdump-\(host)",
            [
                "timeout", "120", "tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "-B", "65536",
                "-s", String(snapLength), "-w", file, filter,
            ]
        )
        guard run.waitForError(containing: "listening on", timeout: .seconds(10)) else {
            throw LabError("tcpdump in \(host) did not start: \(run.errors)")
        }
        return Capture(host: host, file: file, process: run)
    }

    // MARK: Traffic

    /// Sends `count` numbered datagrams client → primary:9000 while capturing on `hosts`;
    /// returns, per host, the sequence numbers of this run in the order they arrived.
    func numberedDatagrams(
        runID: UInt32,
        count: Int = 2000,
        intervalMicroseconds: Int = 200,
        captureOn hosts: [String] = ["primary"],
        settle: Duration = .milliseconds(300)
    ) throws -> [String: [UInt32]] {
        let captures = try hosts.map { try startCapture(on: $0, filter: "udp and dst port 9000") }
        _ = try foreground(
            "client",
            "udp-send",
            [
                labtool, "udp-send", "--to", "10.80.0.1:9000", "--count", String(count),
                "--interval-us", String(intervalMicroseconds), "--run-id", String(runID), "--timeout-s", "20",
            ]
        )
        Thread.sleep(forTimeInterval: Double(settle.components.seconds) + Double(settle.components.attoseconds) / 1e18)
        var result: [String: [UInt32]] = [:]
        for capture in captures {
            let file = try capture.finish()
            result[capture.host] = file.ipv4Packets.compactMap { packet -> UInt32? in
                guard packet.transportProtocol == 17, packet.destinationPort == 9000 else { return nil }
                let payload = Array(packet.capturedPayload)
                guard payload.count >= 12, payload[0..<4] == [0x46, 0x54, 0x43, 0x50] else { return nil }
                let id = payload[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                guard id == runID else { return nil }
                return payload[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            }
        }
        return result
    }

    /// Sends `bytes` over kernel TCP client → primary:port; returns the sink's and source's results.
    func tcpTransfer(bytes: Int, port: Int = 5001, timeout: Int = 60) throws -> (
        sink: [String: String], source: [String: String]
    ) {
        let sink = try background(
            "primary",
            "sink",
            [
                labtool, "sink", "--listen", "10.80.0.1:\(port)", "--timeout-s", String(timeout),
            ]
        )
        let source = try foreground(
            "client",
            "source",
            [
                labtool, "source", "--connect", "10.80.0.1:\(port)", "--bytes", String(bytes), "--timeout-s",
                String(timeout),
            ],
            timeout: .seconds(Int64(timeout + 5))
        )
        guard sink.wait(timeout: .seconds(10)), sink.process.terminationStatus == 0 else {
            throw LabError("sink failed: \(sink.output) \(sink.errors)")
        }
        return (sink.lastLineFields, source.lastLineFields)
    }

    /// Median UDP round-trip time client → primary in milliseconds, over `count` probes.
    func udpRoundTrip(count: Int = 20) throws -> (median: Double, received: Int) {
        let echo = try background(
            "primary",
            "udp-echo",
            [labtool, "udp-echo", "--listen", "10.80.0.1:7007", "--timeout-s", "30"]
        )
        defer { echo.stop() }
        // The echo binds asynchronously: the first probes may be refused, so probe more than needed.
        Thread.sleep(forTimeInterval: 0.1)
        let ping = try foreground(
            "client",
            "udp-ping",
            [
                labtool, "udp-ping", "--to", "10.80.0.1:7007", "--count", String(count), "--interval-ms", "10",
                "--timeout-s", "20",
            ]
        )
        let fields = ping.lastLineFields
        guard let median = fields["median_ms"].flatMap(Double.init), let received = fields["received"].flatMap(Int.init)
        else {
            throw LabError("udp-ping printed no result: \(ping.output)")
        }
        return (median, received)
    }
}

/// Counting what arrived.
enum Arrivals {
    /// How many of 0..<count are absent.
    static func missing(_ sequences: [UInt32], count: Int) -> Int {
        count - Set(sequences.filter { $0 < count }).count
    }

    /// Adjacent inversions: arrivals whose number is below the one that arrived just before.
    static func inversions(_ sequences: [UInt32]) -> Int {
        zip(sequences, sequences.dropFirst()).filter { $1 < $0 }.count
    }
}
