import FTCPBridge
import Logging

extension Logger {
    /// Logs what a bridge core reported, one line per event, with the
    /// connection in the metadata so a 3 a.m. grep finds every line of it.
    func log(_ event: BridgeEvent, similarLinesLeftOut: UInt64? = nil) {
        switch event {
        case let .connectionReplicated(key, delta):
            debug("connection replicated", metadata: ["connection": "\(key)", "delta": "\(delta)"])
        case let .divergence(key, position):
            error(
                "servers produced different bytes: the application is not deterministic; the primary serves this connection alone from now on",
                metadata: [
                    "connection": "\(key)", "sequence": "\(position)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        case let .connectionClosed(key, reason):
            debug("connection closed", metadata: ["connection": "\(key)", "reason": "\(reason.rawValue)"])
        case let .connectionExpired(key, phase):
            notice(
                "connection state expired",
                metadata: [
                    "connection": "\(key)", "phase": "\(phase)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        case let .tableFull(key, limit):
            warning(
                "connection table full: client SYN dropped (raise --max-connections?)",
                metadata: [
                    "connection": "\(key)", "limit": "\(limit)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        case let .collidingServiceAddress(key, served, refused):
            warning(
                """
                new connection to \(refused) served unprotected: the same client address and port has a connection \
                open to \(served), and the secondary's kernel knows both under its own address
                """,
                metadata: ["connection": "\(key)", "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)"]
            )
        case let .replicaLost(key, role, cause):
            let other = role == .primary ? "secondary" : "primary"
            error(
                """
                the \(role.rawValue)'s kernel \(cause == .reset ? "reset" : "closed") a connection the \(other)'s still serves: \
                the \(other) serves it alone from now on (no longer protected). If many connections do this at once, \
                the \(role.rawValue)'s application has died or is not listening: restart it
                """,
                metadata: [
                    "connection": "\(key)", "lost": "\(role.rawValue)", "cause": "\(cause.rawValue)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        case let .previousConnectionAnswered(key, role):
            info(
                """
                the \(role.rawValue)'s kernel still holds the previous connection on these client ports and answered \
                the client's new SYN with its ACK: passed to the client, whose reset ends it; its next SYN opens the new \
                connection (as with one server)
                """,
                metadata: [
                    "connection": "\(key)", "role": "\(role.rawValue)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        case let .outboundUnpaired(key, role):
            let other = role == .primary ? "secondary" : "primary"
            let outcome =
                role == .primary ? "it goes out unprotected, from the primary alone" : "refused on the secondary"
            warning(
                """
                the \(role.rawValue)'s application opened a protected outbound connection the \(other)'s did not open \
                in time: \(outcome). If this repeats, the application is not deterministic in the connections it \
                opens, or one server cannot reach the remote end
                """,
                metadata: [
                    "connection": "\(key)", "role": "\(role.rawValue)",
                    "similar_lines_left_out": "\(similarLinesLeftOut ?? 0)",
                ]
            )
        }
    }
}
