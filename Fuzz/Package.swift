// swift-tools-version:6.1
// The libFuzzer target, in a package of its own so that a normal build never sees it:
//
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// scripts/fuzz builds and runs it.
import PackageDescription

let package = Package(
    name: "costd-fuzz",
    dependencies: [.package(name: "costd", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzRequests",
            dependencies: [.product(name: "CostdProtocol", package: "costd")]
        )
    ]
)
