// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // The hot path mutates state held by classes (the connection handler, the caches) in
    // place; Swift's dynamic exclusivity checks cost several percent of CPU per request there.
    // Debug builds, and so the tests, keep them.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "costd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "costd", targets: ["costd"]),
        .executable(name: "costctl", targets: ["costctl"]),
        .executable(name: "costd-bench", targets: ["costd-bench"]),
        .library(name: "CostdCore", targets: ["CostdCore"]),
        .library(name: "CostdProtocol", targets: ["CostdProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // The pure core: pricing, routing, budgets, cache policy, keys, JSON, config. No I/O.
        .target(
            name: "CostdCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // The wire format: frames and JSON-RPC envelopes, as NIO codecs.
        .target(
            name: "CostdProtocol",
            dependencies: [
                "CostdCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // hiredis 0.14 from Debian's libhiredis-dev, found with pkg-config.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // The Redis adapter: hiredis as the RESP codec over NIO channels owned by the event loops.
        .target(
            name: "CostdRedis",
            dependencies: [
                "CHiredis",
                "CostdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // libsystemd from Debian's libsystemd-dev: readiness, watchdog and socket activation.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // The daemon: the NIO server, the method handlers, the ledger.
        .target(
            name: "CostdServer",
            dependencies: [
                "CostdCore",
                "CostdProtocol",
                "CostdRedis",
                "CostdPOSIX",
                "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // Async functions run on their caller's executor (the HTTP endpoint's calls on their
            // connection's event loop), not on the global pool.
            swiftSettings: strictSettings + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // Unix-socket addresses, shared by the server, the client, the benchmark and the tests.
        .target(
            name: "CostdPOSIX",
            swiftSettings: strictSettings
        ),
        // A small blocking client over the Unix socket, shared by costctl, the bench and tests.
        .target(
            name: "CostdClient",
            dependencies: ["CostdCore", "CostdPOSIX"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "costd",
            dependencies: [
                "CostdCore",
                "CostdServer",
                "CostdPOSIX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "costctl",
            dependencies: [
                "CostdCore",
                "CostdClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // The benchmark: costd beside redis-server and an echo floor, plus micro-benchmarks.
        .executableTarget(
            name: "costd-bench",
            dependencies: [
                "CHiredis",
                "CostdCore",
                "CostdProtocol",
                "CostdClient",
                "CostdPOSIX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CostdCoreTests",
            dependencies: ["CostdCore"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CostdProtocolTests",
            dependencies: [
                "CostdProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CostdRedisTests",
            dependencies: [
                "CostdRedis",
                "CostdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CostdServerTests",
            dependencies: [
                "CostdServer",
                "CostdCore",
                "CostdProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CostdIntegrationTests",
            dependencies: [
                "CostdCore",
                "CostdClient",
                "CostdPOSIX",
                // The store parity suite runs the engine in-process (on a manual clock) against
                // the embedded store and a real redis-server.
                "CostdServer",
                "CostdProtocol",
                "CostdRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
