// swift-tools-version:6.0
import Foundation
import PackageDescription

/// sherpa-onnx's shared libraries, installed from PyPI by `scripts/setup`.
let sherpaLib = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .appendingPathComponent(".deps/sherpa-onnx/lib").path

let package = Package(
    name: "Tingxie",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tingxie", targets: ["tingxie"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CSherpaOnnx"),
        .systemLibrary(name: "COpenCC", pkgConfig: "opencc", providers: [.apt(["libopencc-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "TingxieCore",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "TingxieText", dependencies: ["TingxieCore", "COpenCC"]),
        .target(name: "TingxieAudio", dependencies: ["TingxieCore"]),
        .target(
            name: "TingxieSherpa",
            dependencies: ["TingxieCore", "CSherpaOnnx"],
            linkerSettings: [
                .unsafeFlags(["-L\(sherpaLib)", "-Xlinker", "-rpath", "-Xlinker", sherpaLib]),
            ]
        ),
        // ONNX Runtime's C API, reached through its table of functions (the one door to it).
        .target(
            name: "TingxieRuntime",
            dependencies: ["TingxieCore"],
            linkerSettings: [
                .unsafeFlags(["-L\(sherpaLib)", "-Xlinker", "-rpath", "-Xlinker", sherpaLib]),
            ]
        ),
        // Tingxie's own Whisper decoder; reads model folders and metadata as TingxieSherpa does.
        .target(name: "TingxieWhisper", dependencies: ["TingxieCore", "TingxieRuntime", "TingxieSherpa"]),
        .target(
            name: "TingxiePipeline",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "TingxieOperations", dependencies: ["TingxieCore"]),
        .target(
            name: "TingxieJobs",
            dependencies: [
                "TingxieCore", "TingxieOperations",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TingxiePostgres",
            dependencies: [
                "TingxieCore", "TingxieJobs", "TingxieOperations",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TingxieServer",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText", "TingxiePipeline", "TingxieJobs", "TingxieOperations", "TingxiePostgres", "CMalloc",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            resources: [.copy("Web")]
        ),
        .target(
            name: "TingxieModels",
            dependencies: [
                "TingxieCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("catalog.json"), .copy("whisper-ct2-to-onnx.py")]
        ),
        .executableTarget(
            name: "tingxie",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText", "TingxieSherpa", "TingxiePipeline",
                "TingxieJobs", "TingxieOperations", "TingxieServer", "TingxieModels", "TingxieRuntime", "TingxieWhisper",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TingxieTests",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText", "TingxieSherpa", "TingxiePipeline",
                "TingxieJobs", "TingxieOperations", "TingxiePostgres", "TingxieServer", "TingxieModels",
                "TingxieRuntime", "TingxieWhisper",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)
