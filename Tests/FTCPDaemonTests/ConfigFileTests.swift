import Testing

@testable import FTCPDaemon

@Suite("The config file")
struct ConfigFileTests {
    static let keys: [String: ConfigFile.Kind] = [
        "interface": .value, "address": .value, "peer": .value, "port": .value, "service-address": .repeatable,
        "hand-over-on-stop": .flag, "log-level": .value,
    ]

    @Test("settings become arguments; comments, blank lines and quotes are understood")
    func parses() throws {
        let text = """
            # the pair at 192.0.2.100
            interface = eth0
            address=192.0.2.10   # this node
            peer = 192.0.2.11
            service-address = "192.0.2.100"
            hand-over-on-stop = yes

            log-level = notice
            """
        let entries = try ConfigFile.parse(text, path: "ftcp.conf", keys: Self.keys)
        #expect(
            entries.flatMap(\.arguments) == [
                "--interface", "eth0", "--address", "192.0.2.10", "--peer", "192.0.2.11",
                "--service-address", "192.0.2.100", "--hand-over-on-stop", "--log-level", "notice",
            ]
        )
        #expect(entries.map(\.line) == [2, 3, 4, 5, 6, 8])
    }

    /// Found by the config-file campaign: U+113D1 (TULU-TIGALARI REPHA) joins the character after
    /// it into one cluster, so a closing quote, an '=' or a '#' right after it went unseen.
    @Test("a character that joins the next one hides no quote, '=' or '#' after it")
    func prependingCharacters() throws {
        let text = "address = \"\u{11451}\u{113D1}\"\npeer = 192.0.2.11\u{113D1}# a comment\nport\u{113D1}= 9999"
        // The key 'port' followed by U+113D1 is not 'port': an unknown key, named on its line.
        #expect(throws: ConfigFile.ParseError.self) { try ConfigFile.parse(text, path: "ftcp.conf", keys: Self.keys) }
        let entries = try ConfigFile.parse(
            text.split(separator: "\n").prefix(2).joined(separator: "\n"),
            path: "ftcp.conf",
            keys: Self.keys
        )
        #expect(entries.map(\.key) == ["address", "peer"])
        #expect(entries.map(\.value) == ["\u{11451}\u{113D1}", "192.0.2.11\u{113D1}"])
    }

    /// Found by Fuzz/ConfigFileFuzzer.swift: "\r\n" is a single Character in Swift, so a file
    /// with CRLF line ends was one line, and the first key took every later setting as its value.
    @Test("a file saved with CRLF line ends reads like the same file with LF ends")
    func crlfLineEnds() throws {
        let text = "address = 192.0.2.10\r\npeer = 192.0.2.11\r\n# a comment\r\nhand-over-on-stop = true\r\n"
        let entries = try ConfigFile.parse(text, path: "ftcp.conf", keys: Self.keys)
        #expect(entries.map(\.key) == ["address", "peer", "hand-over-on-stop"])
        #expect(entries.map(\.value) == ["192.0.2.10", "192.0.2.11", "true"])
        #expect(entries.map(\.line) == [1, 2, 4])
        let unix = try ConfigFile.parse(text.replacing("\r\n", with: "\n"), path: "ftcp.conf", keys: Self.keys)
        #expect(entries == unix)
        #expect(throws: ConfigFile.ParseError(path: "ftcp.conf", line: 2, message: "'port' has no value")) {
            try ConfigFile.parse("peer = 192.0.2.11\r\nport =\r\n", path: "ftcp.conf", keys: Self.keys)
        }
    }

    @Test(
        "errors name the file and the line",
        arguments: [
            ("interface = eth0\nadress = 192.0.2.10\n", 2, "unknown key 'adress' (did you mean 'address'?)"),
            ("interface eth0\n", 1, "expected 'key = value', found 'interface eth0'"),
            ("port =\n", 1, "'port' has no value"),
            ("hand-over-on-stop = maybe\n", 1, "'hand-over-on-stop' is a switch: true or false, not 'maybe'"),
            ("peer = 192.0.2.11\n\npeer = 192.0.2.12\n", 3, "'peer' is set again (first on line 1)"),
        ]
    )
    func errors(text: String, line: Int, message: String) {
        #expect(throws: ConfigFile.ParseError.self) {
            try ConfigFile.parse(text, path: "/etc/ftcp/ftcp.conf", keys: Self.keys)
        }
        do {
            _ = try ConfigFile.parse(text, path: "/etc/ftcp/ftcp.conf", keys: Self.keys)
        } catch {
            #expect(error.line == line)
            #expect(error.description.hasPrefix("/etc/ftcp/ftcp.conf:\(line): \(message)"))
        }
    }

    @Test("the command line overrides the file, a repeatable setting as a whole")
    func commandLineWins() throws {
        let entries = try ConfigFile.parse(
            """
            address = 192.0.2.10
            peer = 192.0.2.11
            service-address = 192.0.2.100
            service-address = 192.0.2.101
            """,
            path: "f",
            keys: Self.keys
        )
        #expect(
            ConfigFile.merge(entries, commandLine: ["--peer", "192.0.2.12", "--service-address=192.0.2.200"]) == [
                "--address", "192.0.2.10", "--peer", "192.0.2.12", "--service-address=192.0.2.200",
            ]
        )
    }
}
