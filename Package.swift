// swift-tools-version: 6.0
import PackageDescription

/// The numeric kernels are compiled with optimisation and for this machine's CPU in every build
/// configuration: users run `swift run finetune` without `-c release`, and an unoptimised GEMM
/// epilogue or LayerNorm is 20-50x slower. Everything per-element lives in `Kernels` for that reason.
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-O", "-target-cpu", "native"]),
]

let package = Package(
    name: "bertkit",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BertKit", targets: ["BertKit"]),
        .executable(name: "finetune", targets: ["finetune"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        // AdamW's loop, in C so that it vectorises (see its file); no fused multiply-adds, so it rounds as PyTorch does.
        .target(
            name: "COptimizer",
            cSettings: [.unsafeFlags(["-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off"])]
        ),
        .target(
            name: "Kernels",
            dependencies: ["CDNNL", "COptimizer"],
            swiftSettings: kernelFlags
        ),
        .target(
            name: "BertKit",
            dependencies: ["Kernels", "CSQLite", "CMPI"]
        ),
        .executableTarget(
            name: "finetune",
            dependencies: [
                "BertKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "benchmark",
            dependencies: [
                "BertKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
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
