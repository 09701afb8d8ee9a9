// swift-tools-version:6.0
// Herd: a recommender-system toolkit. Module layers, dependencies pointing one way:
//   CBLAS → HerdTensor (tensors & kernels) → HerdData (batch, readers, preprocessing)
//         → HerdFeatures (FeatureTable: columnar tables, Friesian-style feature engineering)
//         → HerdLayers (embeddings, layers) → HerdModels (DLRM, W&D) → HerdTraining (optimizers,
//           metrics, trainer, export) → HerdServing (ANN indexes, feature stores, recommender; CHnswlib,
//           CHiredis) → HerdGRPC (gRPC services and clients on grpc-swift-2, generated code from Protos/)
//         → HerdServer (HTTP on Hummingbird, Prometheus metrics, ServiceLifecycle)
//         → HerdCLI (commands, benchmarks) → herd (executable).
// NOTE: no unsafeFlags here (they would make the package unusable as a dependency); the target CPU
// flags for fast SIMD are passed by scripts/build.
import PackageDescription

let package = Package(
    name: "Herd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "herd", targets: ["herd"]),
        .library(name: "Herd", targets: ["HerdTensor", "HerdData", "HerdFeatures", "HerdLayers", "HerdModels", "HerdTraining", "HerdServing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CHerdKernels"),
        // hnswlib is header-only (Debian's libhnswlib-dev); this target is its C shim.
        .target(name: "CHnswlib", linkerSettings: [.linkedLibrary("stdc++")]),
        .systemLibrary(
            name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]),
        .target(name: "HerdTensor", dependencies: ["CBLAS", "CHerdKernels"]),
        .target(name: "HerdData", dependencies: ["HerdTensor"]),
        .target(name: "HerdFeatures", dependencies: ["HerdTensor", "HerdData", "CHerdKernels"]),
        .target(name: "HerdLayers", dependencies: ["HerdTensor", "HerdData"]),
        .target(name: "HerdModels", dependencies: ["HerdTensor", "HerdData", "HerdLayers"]),
        .target(name: "HerdTraining", dependencies: ["HerdTensor", "HerdData", "HerdFeatures", "HerdLayers", "HerdModels"]),
        .target(
            name: "HerdServing",
            dependencies: ["HerdTensor", "HerdData", "HerdFeatures", "HerdTraining", "CHnswlib", "CHiredis"]),
        // Generated code in Sources/HerdGRPC/Generated (scripts/generate-protos from Protos/herd/v1).
        .target(
            name: "HerdGRPC",
            dependencies: [
                "HerdServing", "HerdTraining", "HerdFeatures",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "HerdServer",
            dependencies: [
                "HerdServing", "HerdTraining", "HerdGRPC",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .target(
            name: "HerdCLI",
            dependencies: [
                "HerdTensor", "HerdData", "HerdFeatures", "HerdLayers", "HerdModels", "HerdTraining", "HerdServing", "HerdGRPC", "HerdServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "herd", dependencies: ["HerdCLI", "HerdTensor"]),
        .target(name: "HerdTestSupport", dependencies: ["HerdTensor", "HerdData", "HerdFeatures", "HerdLayers", "HerdModels", "HerdTraining", "HerdServing"]),
        .testTarget(name: "HerdTensorTests", dependencies: ["HerdTensor", "HerdTestSupport"]),
        .testTarget(name: "HerdLayersTests", dependencies: ["HerdLayers", "HerdTestSupport"]),
        .testTarget(name: "HerdModelsTests", dependencies: ["HerdModels", "HerdTestSupport"]),
        .testTarget(name: "HerdTrainingTests", dependencies: ["HerdTraining", "HerdFeatures", "HerdTestSupport"]),
        .testTarget(name: "HerdDataTests", dependencies: ["HerdData", "HerdTestSupport"]),
        .testTarget(name: "HerdCLITests", dependencies: ["HerdCLI", "HerdData", "HerdFeatures", "HerdTraining", "HerdTestSupport", "HerdGRPC",
                                                         .product(name: "GRPCCore", package: "grpc-swift-2")]),
        .testTarget(name: "HerdFeaturesTests", dependencies: ["HerdFeatures", "HerdTestSupport"]),
        .testTarget(name: "HerdGRPCTests", dependencies: ["HerdGRPC", "HerdServing", "HerdFeatures", "HerdTraining", "HerdTestSupport",
                                                          .product(name: "GRPCCore", package: "grpc-swift-2"),
                                                          .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport")]),
        .testTarget(name: "HerdServingTests", dependencies: ["HerdServing", "HerdFeatures", "HerdTraining", "HerdTestSupport"]),
    ],
    cxxLanguageStandard: .cxx17
)
