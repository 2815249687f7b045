// swift-tools-version: 6.0
import PackageDescription

// The modules every guest request runs through (KVM's guest memory, virtio, the block layer):
// the release build leaves out Swift's run-time exclusivity checks there, which cost almost
// half of the loop's instructions per request (swift_beginAccess, a thread-local lookup in
// libswiftCore each time). The debug build that `make test` runs keeps them, so a conflicting
// access still traps in every test, and so does the fuzzing build; compile-time checks stay on.
let loopHotPath: [SwiftSetting] = Context.environment["SVMM_FUZZ"] != nil ? []
    : [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "svmm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "svmm", targets: ["svmm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // Thin C shim: ioctl numbers and struct layouts Swift cannot import, libaio and libfdt linkage.
        .target(
            name: "CKVM",
            linkerSettings: [.linkedLibrary("aio"), .linkedLibrary("fdt")]
        ),
        .target(name: "KVM", dependencies: ["CKVM"], swiftSettings: loopHotPath),
        .target(name: "Block", dependencies: ["CKVM"], swiftSettings: loopHotPath),
        .target(name: "NBD", dependencies: ["Block", "CKVM"]),
        .target(name: "Devices", dependencies: ["KVM", "Block", .product(name: "Logging", package: "swift-log")],
                swiftSettings: loopHotPath),
        .target(name: "Machine", dependencies: [
            "KVM", "Block", "Devices", "CKVM", "NBD",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "QMP", dependencies: ["Machine", "Block", "NBD", "CKVM"]),
        .target(name: "CommandLineOptions", dependencies: ["Machine", "Block", "Devices"]),
        // Each parser of outside input behind one name, for the libFuzzer binary and the corpus replay test.
        .target(name: "FuzzTargets", dependencies: ["CommandLineOptions", "Machine", "QMP", "NBD", "Block", "Devices", "KVM"]),
        .executableTarget(name: "svmm", dependencies: ["Machine", "Block", "Devices", "QMP", "CKVM", "CommandLineOptions"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices", "KVM", "Block"]),
        .testTarget(name: "BlockTests", dependencies: ["Block"]),
        .testTarget(name: "NBDTests", dependencies: ["NBD", "Block", "CKVM"]),
        .testTarget(name: "QMPTests", dependencies: ["QMP", "Machine"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer binary has no main of its own (libFuzzer brings one), so it only exists in the
// sanitized build `make fuzz` runs (scripts/fuzz.sh sets SVMM_FUZZ=1); a plain build never links it.
if Context.environment["SVMM_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "svmm-fuzz", dependencies: ["FuzzTargets"]))
    package.products.append(.executable(name: "svmm-fuzz", targets: ["svmm-fuzz"]))
}
