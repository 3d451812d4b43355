// swift-tools-version:6.0
import PackageDescription

// Numeric loops must vectorize: `sqrt` only does so without errno (DESIGN.md §7),
// FMA needs a target CPU (haswell = AVX2 + FMA, every current x86 server),
// and exclusivity checks cost a branch per buffer access in the hot loops.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-fno-math-errno", "-target-cpu", "haswell", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "LTE",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "lte", targets: ["LTECLI"]),
        .library(name: "LTE", targets: ["LTEBase", "LTENumerics", "LTEData", "LTEModel", "LTETraining", "LTEStore", "LTENet", "LTECluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        // The registry and text rendering behind `lte server --metrics` (small: swift-atomics, swift-metrics' core).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: module maps over the system libraries (DESIGN.md §3, lowest layer).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CNNG", path: "Sources/CNNG"),
        .systemLibrary(name: "CGit2", path: "Sources/CGit2", pkgConfig: "libgit2"),

        // The error type every layer throws, below all of them.
        .target(name: "LTEBase"),
        .target(name: "LTENumerics", dependencies: ["LTEBase", "CBLAS", "CMalloc"], swiftSettings: fastMath),
        .target(name: "LTEModel", dependencies: ["LTEBase", "LTENumerics"], swiftSettings: fastMath),
        // Text and tokens: tokenizers, token shards, corpus streaming, batch sampling (no model).
        .target(name: "LTEData", dependencies: ["LTEBase", "LTENumerics"], swiftSettings: fastMath),
        .target(name: "LTETraining", dependencies: ["LTEBase", "LTEData", "LTEModel", "LTENumerics"], swiftSettings: fastMath),
        .target(name: "LTEStore", dependencies: ["LTEBase", "LTEData", "LTEModel", "LTETraining", "LTENumerics", "CGit2",
                                               .product(name: "Crypto", package: "swift-crypto")], swiftSettings: fastMath),
        .target(name: "LTENet", dependencies: ["LTEBase", "CNNG", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: fastMath),
        .target(name: "LTECluster", dependencies: ["LTEBase", "LTEData", "LTENet", "LTEStore", "LTETraining", "LTEModel", "LTENumerics",
                                                 .product(name: "Crypto", package: "swift-crypto"),
                                                 .product(name: "Prometheus", package: "swift-prometheus")], swiftSettings: fastMath),
        .executableTarget(
            name: "LTECLI",
            dependencies: [
                "LTEBase", "LTECluster", "LTENet", "LTEStore", "LTEData", "LTETraining", "LTEModel", "LTENumerics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastMath),

        // Test helpers more than one test target needs (a test target cannot read another's files).
        .target(name: "LTETestSupport", dependencies: ["LTEBase"], path: "Tests/Support"),
        .testTarget(name: "LTENumericsTests", dependencies: ["LTENumerics"], swiftSettings: fastMath),
        .testTarget(name: "LTEModelTests", dependencies: ["LTEModel", "LTENumerics"], swiftSettings: fastMath),
        .testTarget(name: "LTEDataTests", dependencies: ["LTEData", "LTEBase", "LTENumerics", "LTETestSupport"], swiftSettings: fastMath),
        .testTarget(name: "LTETrainingTests", dependencies: ["LTETraining", "LTEModel", "LTENumerics", "LTETestSupport"], swiftSettings: fastMath),
        .testTarget(name: "LTEStoreTests", dependencies: ["LTEStore", "LTETraining", "LTEModel", "LTETestSupport"], swiftSettings: fastMath),
        .testTarget(name: "LTENetTests", dependencies: ["LTEBase", "LTENet", "LTENumerics", "LTETestSupport"], swiftSettings: fastMath),
        .testTarget(name: "LTEClusterTests", dependencies: ["LTEBase", "LTECluster", "LTEData", "LTENet", "LTEStore", "LTETraining", "LTEModel",
                                                       "LTENumerics", "LTETestSupport"],
                    swiftSettings: fastMath),
        .testTarget(name: "LTECLITests", dependencies: ["LTECLI", "LTENet", "LTETestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
