import FTCPLinux
import FTCPWire
import Foundation
import Glibc
import Testing

/// Tests of address takeover: ARP packet parsing, the announcement schedule, and (as root) claiming,
/// announcing and probing an address between two network namespaces.
@Suite struct AddressClaimTests {}

// MARK: - ARP packets (no root needed)

extension AddressClaimTests {
    @Suite struct Parsing {
        static let mac = MACAddress("02:aa:bb:cc:dd:01")!
        static let other = MACAddress("02:aa:bb:cc:dd:02")!
        static let address = IPv4Address("10.96.0.5")!

        /// A gratuitous request for 10.96.0.5 from 02:aa:bb:cc:dd:01, as on the wire.
        static let wire: [UInt8] = [
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, 10, 96, 0, 5,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 96, 0, 5,
        ]

        @Test func macAddressTextRoundTrips() {
            #expect(Self.mac.description == "02:aa:bb:cc:dd:01")
            #expect(MACAddress("0:1:2:a:B:ff")?.description == "00:01:02:0a:0b:ff")
            #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
            for bad in [
                "", "02:aa:bb:cc:dd", "02:aa:bb:cc:dd:01:02", "02:aa:bb:cc:dd:xx", "02:aa:bb:cc:dd:100",
                "02::bb:cc:dd:01", "+2:aa:bb:cc:dd:01",
            ] {
                #expect(MACAddress(bad) == nil, "\(bad)")
            }
            #expect(MACAddress([1, 2, 3]) == nil)
        }

        @Test func gratuitousFormsHaveTheirWireShape() {
            let request = ARPPacket.gratuitous(address: Self.address, hardwareAddress: Self.mac, form: .request)
            #expect(request.bytes == Self.wire)
            let reply = ARPPacket.gratuitous(address: Self.address, hardwareAddress: Self.mac, form: .reply)
            #expect(reply.operation == .reply)
            #expect(reply.senderProtocolAddress == Self.address && reply.targetProtocolAddress == Self.address)
            #expect(reply.targetHardwareAddress == Self.mac)
            #expect(Array(reply.bytes[6..<8]) == [0, 2])
            let probe = ARPPacket.probe(address: Self.address, hardwareAddress: Self.mac)
            #expect(probe.operation == .request && probe.senderProtocolAddress.value == 0)
            #expect(probe.targetProtocolAddress == Self.address && probe.targetHardwareAddress == .zero)
        }

        @Test func parsesAWholePacketAndIgnoresPadding() throws {
            let packet = try #require(ARPPacket(parsing: Self.wire))
            #expect(packet == ARPPacket.gratuitous(address: Self.address, hardwareAddress: Self.mac, form: .request))
            // Ethernet pads an ARP packet to 46 bytes.
            #expect(ARPPacket(parsing: Self.wire + [UInt8](repeating: 0, count: 18)) == packet)
            var unknown = Self.wire
            unknown[7] = 9
            #expect(ARPPacket(parsing: unknown)?.operation == .unknown(9))
        }

        @Test func skipsShortFrames() {
            for length in 0..<ARPPacket.length {
                #expect(ARPPacket(parsing: Array(Self.wire.prefix(length))) == nil, "\(length) bytes")
            }
        }

        @Test func skipsFramesThatAreNotEthernetIPv4ARP() {
            for (offset, value) in [(1, UInt8(6)), (0, 1), (2, 0x86), (3, 0xdd), (4, 8), (5, 16)] {
                var bytes = Self.wire
                bytes[offset] = value
                #expect(ARPPacket(parsing: bytes) == nil, "byte \(offset) = \(value)")
            }
        }

        @Test func hostileBytesNeverTrap() {
            var generator = SystemRandomNumberGenerator()
            var parsed = 0
            for round in 0..<20_000 {
                let length = Int.random(in: 0...64, using: &generator)
                var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if round % 2 == 0, length >= 6 { bytes.replaceSubrange(0..<6, with: Self.wire[0..<6]) }
                if let packet = ARPPacket(parsing: bytes) {
                    parsed += 1
                    _ = packet.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac)
                }
            }
            #expect(parsed > 0)  // the valid-prefix half parses whenever long enough
        }

        @Test func recognisesWhatAnswersAProbe() {
            let free = IPv4Address("10.96.0.77")!
            let theirs = ARPPacket.gratuitous(address: Self.address, hardwareAddress: Self.other, form: .request)
            #expect(theirs.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == Self.other)
            #expect(theirs.conflictingHardwareAddress(for: free, ownHardwareAddress: Self.mac) == nil)
            // Linux answers a probe with a reply: sender = the address, target IP 0.0.0.0.
            let reply = ARPPacket(
                operation: .reply,
                senderHardwareAddress: Self.other,
                senderProtocolAddress: Self.address,
                targetHardwareAddress: Self.mac,
                targetProtocolAddress: IPv4Address(0)
            )
            #expect(reply.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == Self.other)
            // Another host probing for the same address conflicts too.
            let rival = ARPPacket.probe(address: Self.address, hardwareAddress: Self.other)
            #expect(rival.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == Self.other)
            // Our own packets, someone else's ordinary request, and unknown operations do not.
            let own = ARPPacket.gratuitous(address: Self.address, hardwareAddress: Self.mac, form: .reply)
            #expect(own.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == nil)
            let asking = ARPPacket(
                operation: .request,
                senderHardwareAddress: Self.other,
                senderProtocolAddress: IPv4Address("10.96.0.9")!,
                targetHardwareAddress: .zero,
                targetProtocolAddress: Self.address
            )
            #expect(asking.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == nil)
            var odd = theirs
            odd.operation = .unknown(3)
            #expect(odd.conflictingHardwareAddress(for: Self.address, ownHardwareAddress: Self.mac) == nil)
        }

        @Test func unknownInterfaceIsReportedWithAdvice() throws {
            let claim = AddressClaim(interface: "ftcp-none0")
            let error = try #require(throws: AddressClaimError.self) { try claim.claim(address: Self.address) }
            #expect(error.code == .noSuchInterface)
            #expect(error.description.contains("ip -brief link"))
            let wide = AddressClaim(interface: "lo", prefixLength: 33)
            let prefix = try #require(throws: AddressClaimError.self) { try wide.claim(address: Self.address) }
            #expect(prefix.code == .invalidPrefixLength)
            #expect(prefix.equivalentCommand == "ip addr add 10.96.0.5/33 dev lo")
            let arp = try #require(throws: LinuxShellError.self) {
                try ARPSocket(interface: "an-interface-name-too-long")
            }
            #expect(arp.code == .noSuchDevice)
        }
    }
}

// MARK: - Announcement schedule (pure)

extension AddressClaimTests {
    @Suite struct Schedule {
        @Test func dueTimesFollowTheInterval() {
            let schedule = AnnouncementSchedule(count: 5, intervalMilliseconds: 200)
            #expect((0..<6).map(schedule.offsetMilliseconds(of:)) == [0, 200, 400, 600, 800, nil])
            #expect(schedule.offsetMilliseconds(of: -1) == nil)
            #expect(
                [0, 199, 200, 399, 400, 799, 800, 10_000].map { schedule.dueCount(elapsedMilliseconds: $0) }
                    == [1, 1, 2, 2, 3, 4, 5, 5]
            )
            #expect(schedule.due(sent: 0, elapsedMilliseconds: 0) == 0..<1)
            #expect(schedule.due(sent: 1, elapsedMilliseconds: 150).isEmpty)
            #expect(schedule.due(sent: 1, elapsedMilliseconds: 450) == 1..<3)  // a late poll catches up
            #expect(schedule.due(sent: 5, elapsedMilliseconds: 5_000).isEmpty)
            #expect(schedule.due(sent: 9, elapsedMilliseconds: 5_000).isEmpty)
            #expect(schedule.millisecondsUntilNext(sent: 1, elapsedMilliseconds: 150) == 50)
            #expect(schedule.millisecondsUntilNext(sent: 3, elapsedMilliseconds: 450) == 150)
            #expect(schedule.millisecondsUntilNext(sent: 3, elapsedMilliseconds: 700) == 0)
            #expect(schedule.millisecondsUntilNext(sent: 5, elapsedMilliseconds: 700) == nil)
        }

        @Test func degenerateSchedules() {
            let burst = AnnouncementSchedule(count: 3, intervalMilliseconds: 0)
            #expect(burst.due(sent: 0, elapsedMilliseconds: 0) == 0..<3)
            let none = AnnouncementSchedule(count: -2, intervalMilliseconds: 100)
            #expect(none.count == 0)
            #expect(none.due(sent: 0, elapsedMilliseconds: 1_000).isEmpty)
            #expect(none.millisecondsUntilNext(sent: 0, elapsedMilliseconds: 0) == nil)
            let huge = AnnouncementSchedule(count: 3, intervalMilliseconds: .max)
            #expect(huge.offsetMilliseconds(of: 2) == .max)
            #expect(huge.dueCount(elapsedMilliseconds: .max) == 2)
            #expect(AnnouncementSchedule().count == 5 && AnnouncementSchedule().intervalMilliseconds == 200)
        }

        @Test func drivenByClockInstants() throws {
            let schedule = AnnouncementSchedule(count: 4, intervalMilliseconds: 100)
            let start = ContinuousClock.now
            #expect(schedule.due(sent: 0, start: start, now: start.advanced(by: .milliseconds(250))) == 0..<3)
            #expect(schedule.due(sent: 0, start: start, now: start.advanced(by: .milliseconds(-50))) == 0..<1)
            #expect(schedule.due(sent: 3, start: start, now: start.advanced(by: .milliseconds(299))).isEmpty)
            let deadline = try #require(schedule.deadline(of: 2, start: start))
            #expect(start.duration(to: deadline) == .milliseconds(200))
            #expect(schedule.deadline(of: 4, start: start) == nil)
        }
    }
}

// MARK: - Two namespaces (root)

/// Two network namespaces, `ftcp-arp-a` and `ftcp-arp-b`, joined by a veth pair (`arpa0`
/// 10.96.0.1/24, `arpb0` 10.96.0.2/24). Removed by ``remove()`` and, as a fallback, on deinit.
private final class ARPLab {
    static let namespaceA = "ftcp-arp-a"
    static let namespaceB = "ftcp-arp-b"
    static let interfaceA = "arpa0"
    static let interfaceB = "arpb0"

    static var isAvailable: Bool { geteuid() == 0 && ipTool != nil }

    private static var ipTool: String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { access($0, X_OK) == 0 }
    }

    init() throws {
        Self.removeNamespaces()
        do {
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
                (Self.namespaceA, Self.interfaceA, "10.96.0.1/24"), (Self.namespaceB, Self.interfaceB, "10.96.0.2/24"),
            ] {
                try Self.ip("-n", namespace, "address", "add", address, "dev", interface)
                try Self.ip("-n", namespace, "link", "set", "dev", interface, "up")
            }
        } catch {
            Self.removeNamespaces()
            throw error
        }
    }

    deinit { Self.removeNamespaces() }

    func remove() { Self.removeNamespaces() }

    private static func removeNamespaces() {
        for namespace in [namespaceA, namespaceB] where access("\(NetworkNamespace.directory)/\(namespace)", F_OK) == 0
        {
            _ = try? ip("netns", "delete", namespace)
        }
    }

    /// Runs `ip` with the arguments and returns its output; throws with that output when it fails.
    @discardableResult
    static func ip(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipTool!)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        struct CommandFailed: Error, CustomStringConvertible { var description: String }
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "ip \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// B's neighbour entry for `address`, as `ip neigh show` prints it.
    func neighbourOfB(_ address: String) throws -> String {
        try Self.ip("-n", Self.namespaceB, "neigh", "show", address, "dev", Self.interfaceB)
    }

    /// Waits up to `milliseconds` for B's entry for `address` to contain `text`; returns the entry.
    func waitForNeighbourOfB(_ address: String, toContain text: String, milliseconds: Int = 1_000) throws -> String {
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
        var entry = try neighbourOfB(address)
        while !entry.contains(text), ContinuousClock.now < deadline {
            usleep(20_000)
            entry = try neighbourOfB(address)
        }
        return entry
    }

    /// Sets B's entry for `address` to a made-up hardware address, state STALE.
    func plantStaleNeighbourInB(_ address: String, lladdr: String) throws {
        try Self.ip(
            "-n",
            Self.namespaceB,
            "neigh",
            "replace",
            address,
            "lladdr",
            lladdr,
            "dev",
            Self.interfaceB,
            "nud",
            "stale"
        )
    }

    func hardwareAddressOfA() throws -> MACAddress {
        try NetworkNamespace.run(in: Self.namespaceA) { try ARPSocket(interface: Self.interfaceA).hardwareAddress }
    }
}

extension AddressClaimTests {
    @Suite(
        .serialized,
        .enabled(
            if: ARPLab.isAvailable,
            "needs root and the ip tool (namespaces ftcp-arp-a/b): run the tests as root"
        )
    )
    struct Lab {
        static let claimed = IPv4Address("10.96.0.5")!
        static let planted = "02:00:00:00:00:99"
        static let claim = AddressClaim(interface: ARPLab.interfaceA, prefixLength: 24)

        @Test func announcementUpdatesTheNeighbours() throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            try lab.plantStaleNeighbourInB("10.96.0.5", lladdr: Self.planted)
            let macA = try lab.hardwareAddressOfA()

            let result = try NetworkNamespace.run(in: ARPLab.namespaceA) { try Self.claim.claim(address: Self.claimed) }
            #expect(result == .added)
            usleep(100_000)
            // Adding the address alone tells nobody: B still has the planted entry.
            #expect(try lab.neighbourOfB("10.96.0.5").contains(Self.planted))

            let started = ContinuousClock.now
            try NetworkNamespace.run(in: ARPLab.namespaceA) {
                try Self.claim.announce(address: Self.claimed, count: 3, intervalMilliseconds: 50)
            }
            #expect(started.duration(to: .now) >= .milliseconds(100))  // three announcements, 50 ms apart
            let entry = try lab.waitForNeighbourOfB("10.96.0.5", toContain: macA.description)
            #expect(entry.contains(macA.description), "B's entry after the announcement: \(entry)")
        }

        @Test(arguments: GratuitousARPForm.allCases)
        func eachGratuitousFormUpdatesTheNeighbours(form: GratuitousARPForm) throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            let macA = try lab.hardwareAddressOfA()
            let claimed = try NetworkNamespace.run(in: ARPLab.namespaceA) {
                try Self.claim.claim(address: Self.claimed)
            }
            #expect(claimed == .added)
            try lab.plantStaleNeighbourInB("10.96.0.5", lladdr: Self.planted)
            let socket = try NetworkNamespace.run(in: ARPLab.namespaceA) { try ARPSocket(interface: ARPLab.interfaceA) }
            #expect(socket.hardwareAddress == macA)
            try socket.sendGratuitous(address: Self.claimed, form: form)
            let entry = try lab.waitForNeighbourOfB("10.96.0.5", toContain: macA.description)
            #expect(entry.contains(macA.description), "B's entry after a gratuitous \(form): \(entry)")
        }

        @Test func probeFindsTheOwnerAndNobodyForAFreeAddress() throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            let macA = try lab.hardwareAddressOfA()
            let claimed = try NetworkNamespace.run(in: ARPLab.namespaceA) {
                try Self.claim.claim(address: Self.claimed)
            }
            #expect(claimed == .added)
            let socket = try NetworkNamespace.run(in: ARPLab.namespaceB) { try ARPSocket(interface: ARPLab.interfaceB) }
            #expect(socket.hardwareAddress != macA)

            #expect(try socket.probe(address: Self.claimed, timeoutMilliseconds: 1_000) == macA)
            #expect(try socket.probe(address: IPv4Address("10.96.0.1")!, timeoutMilliseconds: 1_000) == macA)

            let started = ContinuousClock.now
            #expect(try socket.probe(address: IPv4Address("10.96.0.77")!, timeoutMilliseconds: 300) == nil)
            let waited = started.duration(to: .now)
            #expect(waited >= .milliseconds(300) && waited < .milliseconds(1_500), "waited \(waited)")
            // B's own address: B's kernel does not answer its own socket, and the probe skips its own frame.
            #expect(try socket.probe(address: IPv4Address("10.96.0.2")!, timeoutMilliseconds: 200) == nil)
        }

        @Test func probeSeesAnAnnouncementFromAnotherHost() throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            let address = IPv4Address("10.96.0.66")!  // on nobody's interface: only A's announcement answers
            // Used from one thread at a time: the announcing thread only, while this one waits in the probe.
            nonisolated(unsafe) let announcer = try NetworkNamespace.run(in: ARPLab.namespaceA) {
                try ARPSocket(interface: ARPLab.interfaceA)
            }
            let prober = try NetworkNamespace.run(in: ARPLab.namespaceB) { try ARPSocket(interface: ARPLab.interfaceB) }
            let announcing = Thread {
                usleep(100_000)
                try? announcer.sendGratuitous(address: address, form: .request)
            }
            announcing.start()
            #expect(try prober.probe(address: address, timeoutMilliseconds: 2_000) == announcer.hardwareAddress)
        }

        @Test func malformedFramesOnTheWireAreSkipped() throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            let receiver = try NetworkNamespace.run(in: ARPLab.namespaceB) {
                try ARPSocket(interface: ARPLab.interfaceB)
            }
            let sender = try NetworkNamespace.run(in: ARPLab.namespaceA) { try ARPSocket(interface: ARPLab.interfaceA) }
            let index = sender.interfaceIndex
            let raw = try NetworkNamespace.run(in: ARPLab.namespaceA) {
                socket(AF_PACKET, SocketType.raw | SocketType.closeOnExec, 0)
            }
            try #require(raw >= 0, "socket(AF_PACKET, SOCK_RAW): errno \(errno)")
            defer { close(raw) }
            // Ethernet frames with EtherType ARP whose payload is short, not IPv4, or has wrong lengths.
            let header = MACAddress.broadcast.octets + sender.hardwareAddress.octets + [0x08, 0x06]
            var wrongLengths = ARPPacket.gratuitous(
                address: Self.claimed,
                hardwareAddress: sender.hardwareAddress,
                form: .request
            ).bytes
            wrongLengths[4] = 200
            for payload in [[UInt8](repeating: 0xff, count: 10), [0, 1, 0x86, 0xdd, 6, 4], wrongLengths] {
                var frame = header + payload
                frame += [UInt8](repeating: 0, count: max(0, 60 - frame.count))
                var link = [UInt8](repeating: 0, count: 20)
                link.withUnsafeMutableBytes { bytes in
                    bytes.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
                    bytes.storeBytes(of: index, toByteOffset: 4, as: Int32.self)
                }
                link[11] = 6
                let sent = frame.withUnsafeBytes { body in
                    link.withUnsafeBytes { address in
                        sendto(
                            raw,
                            body.baseAddress,
                            body.count,
                            0,
                            address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                            20
                        )
                    }
                }
                try #require(sent == frame.count, "sendto(AF_PACKET, SOCK_RAW): errno \(errno)")
            }
            try sender.sendGratuitous(address: Self.claimed, form: .reply)
            // The three malformed frames are read and dropped; the first packet returned is the reply.
            let deadline = ContinuousClock.now.advanced(by: .seconds(2))
            var received: ARPSocket.Received?
            while received == nil, ContinuousClock.now < deadline {
                received = try receiver.receive()
                if received == nil { usleep(10_000) }
            }
            let packet = try #require(received?.packet)
            #expect(packet == .gratuitous(address: Self.claimed, hardwareAddress: sender.hardwareAddress, form: .reply))
            #expect(received?.linkSource == sender.hardwareAddress)
        }

        @Test func releaseRemovesAndRepeatsAreHarmless() throws {
            let lab = try ARPLab()
            defer { lab.remove() }
            try NetworkNamespace.run(in: ARPLab.namespaceA) { () throws in
                #expect(try !AddressClaim.isAddressPresent(address: Self.claimed, interface: ARPLab.interfaceA))
                #expect(try Self.claim.claim(address: Self.claimed) == .added)
                #expect(try Self.claim.claim(address: Self.claimed) == .alreadyPresent)
                #expect(try Self.claim.isAddressPresent(address: Self.claimed))
                #expect(
                    try AddressClaim.isAddressPresent(address: IPv4Address("10.96.0.1")!, interface: ARPLab.interfaceA)
                )
                #expect(try !AddressClaim.isAddressPresent(address: Self.claimed, interface: "lo"))
            }
            let shown = try ARPLab.ip("-n", ARPLab.namespaceA, "-4", "addr", "show", "dev", ARPLab.interfaceA)
            #expect(shown.contains("inet 10.96.0.5/24"), "\(shown)")
            try NetworkNamespace.run(in: ARPLab.namespaceA) { () throws in
                #expect(try Self.claim.release(address: Self.claimed) == .removed)
                #expect(try !Self.claim.isAddressPresent(address: Self.claimed))
                #expect(try Self.claim.release(address: Self.claimed) == .alreadyAbsent)
                #expect(
                    try AddressClaim.isAddressPresent(address: IPv4Address("10.96.0.1")!, interface: ARPLab.interfaceA)
                )
            }
            let after = try ARPLab.ip("-n", ARPLab.namespaceA, "-4", "addr", "show", "dev", ARPLab.interfaceA)
            #expect(!after.contains("10.96.0.5"), "\(after)")
        }
    }
}
