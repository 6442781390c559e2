// swift-tools-version: 6.0
import PackageDescription

/// No target of the `BertKit` product sets a compiler flag: a package that depends on this one by version may not,
/// and a binary compiled for the build machine's CPU stops on an older one. The loops that need the CPU's vector
/// width are compiled for several CPU levels and chosen at start-up instead (Sources/CKernels/cpu_levels.h), and
/// oneDNN picks its own kernels at run time.
///
/// The benchmark's multiply-add peak keeps `-target-cpu native`: it measures this machine's widest fused
/// multiply-add, which only code compiled for this machine issues. The benchmark is not part of the product.
let package = Package(
    name: "bertkit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BertKit", targets: ["BertKit"]),
        .executable(name: "finetune", targets: ["finetune"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // `finetune serve`: HTTP on swift-nio, metrics in Prometheus' format, graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // `swift package generate-documentation --target BertKit` (the DocC catalog in Sources/BertKit/BertKit.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // oneDNN, the GEMM library (fp32 and bf16). Debian ships no dnnl.pc; headers and library are in the
        // default paths. Its OpenMP runtime, libgomp, is linked too: the toolkit sets its thread count.
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Open MPI, for training one model on several processes and hosts (`ProcessGroup`). A dependency like
        // oneDNN: a process started alone links it but never initialises it.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        // The element-wise loops compiled for each CPU level (AVX-512, AVX2, baseline) and the scalar formulas they
        // share with the Swift kernels; no fused multiply-adds, so every operation rounds as PyTorch's do.
        .target(name: "CKernels"),
        .target(
            name: "Kernels",
            dependencies: ["CDNNL", "CKernels"]
        ),
        .target(
            name: "BertKit",
            dependencies: ["Kernels", "CSQLite", "CMPI", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The HTTP server in front of fine-tuned models (`finetune serve`); outside the BertKit product, so that a
        // program that only predicts does not build a web server.
        .target(
            name: "Serving",
            dependencies: [
                "BertKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The web app over results.db (`finetune dashboard`); like Serving, outside the BertKit product.
        .target(
            name: "Dashboard",
            dependencies: [
                "BertKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "finetune",
            dependencies: [
                "BertKit",
                "Serving",
                "Dashboard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "benchmark",
            dependencies: [
                "BertKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.unsafeFlags(["-target-cpu", "native"])]
        ),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        // BadInputs/ is a corpus of broken models and data files that the command-line tests run (scripts/fixtures/make_bad_inputs.py).
        .testTarget(name: "CLITests", dependencies: ["finetune", "allocation-check", "sum-check", "BertKit"], exclude: ["BadInputs"]),
        // Counts heap allocations, to show that a warm training step makes none (run by CLITests).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .executableTarget(name: "allocation-check", dependencies: ["BertKit", "AllocationCounter"],
                          path: "Tests/AllocationCheck"),
        // Sums buffers over an MPI job's processes and checks them exactly (run by CLITests under mpirun).
        .executableTarget(name: "sum-check", dependencies: ["BertKit"], path: "Tests/SumCheck"),
        .testTarget(
            name: "BertKitTests",
            dependencies: ["BertKit"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
