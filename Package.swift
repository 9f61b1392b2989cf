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
    ],
    targets: [
        .systemLibrary(name: "CSherpaOnnx"),
        .systemLibrary(name: "COpenCC", pkgConfig: "opencc", providers: [.apt(["libopencc-dev"])]),
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
        .target(
            name: "TingxiePipeline",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tingxie",
            dependencies: [
                "TingxieCore", "TingxieAudio", "TingxieText", "TingxieSherpa", "TingxiePipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TingxieTests",
            dependencies: ["TingxieCore", "TingxieAudio", "TingxieText", "TingxieSherpa", "TingxiePipeline"],
            exclude: ["Fixtures"]
        ),
    ]
)
