// swift-tools-version:6.0
import PackageDescription

// Module layout (see README.md, "Architecture"):
//   FTCPWire        pure packet views, builders, checksums, sequence numbers (no I/O)
//   FTCPBridge      pure bridge cores: the primary's merge, the secondary's rewrite (no I/O)
//   FTCPReplication pure replication-channel protocol: messages, HMAC, replay window (no I/O)
//   FTCPLinux       the thin Linux shell: NFQUEUE, pcap, raw/UDP/ARP sockets, iptables, system calls
//   FTCPDaemon      the bridges' run loops: the cores driven by the shell
//   CNetfilterQueue / CPcap   system-library shims for the C libraries
//   CPacketSocket   packet-socket calls Glibc's Swift module does not reach (recvmmsg, control messages)
//   ftcp-bridge     the command line (primary, secondary, rules, keygen, status)
//   FTCPDemo, ftcp-demo-server   the deterministic demo application
//   ftcp-impair, ftcp-labtool    the lab's impairment program and traffic tools
let package = Package(
    name: "ftcp",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "FTCPWire", targets: ["FTCPWire"]),
        .executable(name: "ftcp-bridge", targets: ["ftcp-bridge"]),
        .executable(name: "ftcp-demo-server", targets: ["ftcp-demo-server"]),
        .executable(name: "ftcp-impair", targets: ["ftcp-impair"]),
        .executable(name: "ftcp-passthrough", targets: ["ftcp-passthrough"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CNetfilterQueue",
            pkgConfig: "libnetfilter_queue",
            providers: [.apt(["libnetfilter-queue-dev"])]
        ),
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .target(name: "CPacketSocket"),
        .target(name: "FTCPWire"),
        .target(name: "FTCPBridge", dependencies: ["FTCPWire"]),
        .target(
            name: "FTCPReplication",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "FTCPLinux",
            dependencies: ["FTCPWire", "FTCPReplication", "CNetfilterQueue", "CPcap", "CPacketSocket"]
        ),
        .target(
            name: "FTCPDaemon",
            dependencies: [
                "FTCPWire", "FTCPBridge", "FTCPReplication", "FTCPLinux",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(name: "FTCPDemo", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(
            name: "ftcp-bridge",
            dependencies: [
                "FTCPDaemon", "FTCPBridge", "FTCPLinux", "FTCPReplication", "FTCPWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ftcp-demo-server",
            dependencies: ["FTCPDemo", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "ftcp-impair",
            dependencies: [
                "FTCPLinux",
                "FTCPWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ftcp-passthrough",
            dependencies: ["FTCPLinux", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "ftcp-labtool",
            dependencies: [
                "FTCPLinux", "FTCPDemo", "FTCPWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "FTCPWireTests", dependencies: ["FTCPWire"]),
        .testTarget(name: "FTCPBridgeTests", dependencies: ["FTCPBridge", "FTCPWire"]),
        .testTarget(name: "FTCPLinuxTests", dependencies: ["FTCPLinux", "FTCPWire", "FTCPDemo"]),
        .testTarget(
            name: "FTCPReplicationTests",
            dependencies: ["FTCPReplication", "FTCPLinux", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "FTCPDaemonTests", dependencies: ["FTCPDaemon", "FTCPBridge", "FTCPLinux", "FTCPWire"]),
        .testTarget(name: "FTCPLabTests", dependencies: ["FTCPWire", "FTCPLinux"]),
    ]
)
