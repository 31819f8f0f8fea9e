import ArgumentParser
import FTCPDaemon
import Foundation

/// Reads the config file before the command line is parsed: `ftcp-bridge primary|secondary|
/// check-config` take their settings from `--config PATH`, or from /etc/ftcp/ftcp.conf when
/// that exists, with the command line's own options overriding them.
enum ConfigLoader {
    static let defaultPath = "/etc/ftcp/ftcp.conf"
    static let commandsWithConfig: Set<String> = ["primary", "secondary", "check-config"]
    /// Long options that are not settings.
    static let notSettings: Set<String> = ["help", "config", "role"]

    /// Every long option of the bridge roles and its kind, read from their own help text, so
    /// that every option has a key without a second list to keep in step.
    static var keys: [String: ConfigFile.Kind] {
        var keys: [String: ConfigFile.Kind] = [:]
        let help = BridgeOptions.helpMessage(columns: 1_000)
        for line in help.split(separator: "\n") {
            let text = line.drop { $0 == " " }
            guard text.hasPrefix("--") else { continue }
            let name = String(text.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            guard !name.isEmpty, !notSettings.contains(name) else { continue }
            let rest = text.dropFirst(2 + name.count)
            let takesValue = rest.hasPrefix(" <")
            keys[name] = !takesValue ? .flag : (name == "service-address" ? .repeatable : .value)
        }
        return keys
    }

    /// Each setting's values in expanded arguments (after the command), by key: what a reload
    /// compares. A flag given has the value "on"; a key given again keeps every value.
    static func settings(_ arguments: [String]) -> [String: [String]] {
        let kinds = keys
        var result: [String: [String]] = [:]
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else { continue }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let kind = kinds[name] else { continue }
            if kind == .flag {
                result[name, default: []].append("on")
            } else {
                if value == nil, index < arguments.count {
                    value = arguments[index]
                    index += 1
                }
                if kind == .repeatable {
                    result[name, default: []].append(value ?? "")
                } else {
                    result[name] = [value ?? ""]  // the later one wins, as in parsing
                }
            }
        }
        return result
    }

    /// The arguments to parse: the file's settings, then the command line's.
    static func expand(_ arguments: [String]) throws -> [String] {
        guard let command = arguments.first, commandsWithConfig.contains(command) else { return arguments }
        var rest = Array(arguments.dropFirst())
        var path: String?
        if let index = rest.firstIndex(of: "--config") {
            guard index + 1 < rest.count else { throw ValidationError("--config needs a path") }
            path = rest[index + 1]
        } else if let given = rest.first(where: { $0.hasPrefix("--config=") }) {
            path = String(given.dropFirst("--config=".count))
        } else if FileManager.default.fileExists(atPath: defaultPath) {
            path = defaultPath
            rest += ["--config", defaultPath]
        }
        guard let path else { return arguments }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read the config file \(path): \(error.localizedDescription)")
        }
        let entries: [ConfigFile.Entry]
        do {
            entries = try ConfigFile.parse(text, path: path, keys: keys)
        } catch {
            throw ValidationError("\(error)")
        }
        // Each setting is checked on its own, so that a bad value names its line.
        for entry in entries {
            let filler = ["address", "peer"].filter { $0 != entry.key }
                .flatMap { ["--\($0)", $0 == "address" ? "198.18.0.1" : "198.18.0.2"] }
            do {
                _ = try BridgeOptions.parse(filler + entry.arguments)
            } catch {
                throw ValidationError("\(path):\(entry.line): \(BridgeOptions.message(for: error))")
            }
        }
        return [command] + ConfigFile.merge(entries, commandLine: rest)
    }
}

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the config file and the options given with it, without starting anything.",
        discussion: """
            Reads --config (default /etc/ftcp/ftcp.conf), applies the options given here on top, and checks every \
            setting and the key file as `primary` or `secondary` would. Prints the settings in effect and exits 0, \
            or names the line that is wrong and exits non-zero.
            """
    )

    @Option(help: "The role to check the settings for: primary or secondary.")
    var role: String = "primary"

    @OptionGroup var options: BridgeOptions

    func run() throws {
        guard role == "primary" || role == "secondary" else {
            throw ValidationError("--role must be primary or secondary")
        }
        let configuration = try options.configuration(role: role == "primary" ? .primary : .secondary)
        print(
            """
            ok: \(role) on \(configuration.interface), own address \(configuration.ownAddress), peer \(configuration.peerAddress), \
            service address \(configuration.serviceAddresses.map(\.description).joined(separator: ", "))\(configuration.separateServiceAddress == nil ? " (the primary's own: roles never swap)" : ""), \
            ports \(configuration.ports.map(String.init).joined(separator: ",")), key \(configuration.key.fingerprint), \
            control \(configuration.controlPath)
            """
        )
    }
}
