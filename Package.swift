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
        // The bottom layer every module shares: the epoll loop, timers, eventfds, threads, sockets, byte readers.
        .target(name: "Loop", dependencies: ["CKVM"], swiftSettings: loopHotPath),
        .target(name: "KVM", dependencies: ["CKVM", "Loop"], swiftSettings: loopHotPath),
        .target(name: "Block", dependencies: ["CKVM", "Loop"], swiftSettings: loopHotPath),
        .target(name: "NBD", dependencies: ["Block", "CKVM"]),
        .target(name: "Devices", dependencies: ["KVM", "Block", .product(name: "Logging", package: "swift-log")],
                swiftSettings: loopHotPath),
        .target(name: "Machine", dependencies: [
            "KVM", "Block", "Devices", "CKVM", "NBD", "Loop",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "QMP", dependencies: ["Machine", "Block", "NBD", "CKVM", "Migration", "Loop"]),
        .target(name: "CommandLineOptions", dependencies: ["Machine", "Block", "Devices"]),
        // Intel's ISA-L for the migration stream's record checksum (CRC-32C).
        .systemLibrary(name: "CIsal", path: "Sources/CIsal"),
        .target(name: "Migration", dependencies: ["Machine", "Block", "KVM", "CKVM", "CIsal"],
                swiftSettings: loopHotPath),
        // Each parser of outside input behind one name, for the libFuzzer binary and the corpus replay test.
        .target(name: "FuzzTargets", dependencies: ["CommandLineOptions", "Machine", "QMP", "NBD", "Block", "Devices", "KVM", "Migration"]),
        .executableTarget(name: "svmm", dependencies: ["Machine", "Block", "Devices", "QMP", "CKVM", "CommandLineOptions", "Migration"]),
        .testTarget(name: "LoopTests", dependencies: ["Loop"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices", "KVM", "Block"]),
        .testTarget(name: "BlockTests", dependencies: ["Block"]),
        .testTarget(name: "NBDTests", dependencies: ["NBD", "Block", "CKVM", "Loop"]),
        .testTarget(name: "QMPTests", dependencies: ["QMP", "Machine"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration", "Machine", "KVM"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine", "Devices", "KVM", "Block", "CKVM", "CommandLineOptions"]),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer binary has no main of its own (libFuzzer brings one), so it only exists in the
// sanitized build `make fuzz` runs (scripts/fuzz.sh sets SVMM_FUZZ=1); a plain build never links it.
if Context.environment["SVMM_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "svmm-fuzz", dependencies: ["FuzzTargets"]))
    package.products.append(.executable(name: "svmm-fuzz", targets: ["svmm-fuzz"]))
}

// svmm-migrate (the storage-migration driver) and the modules under it, appended here so that
// merges of other targets above stay apart. QmpJSON holds the JSON values, parser and stream
// splitter as QEMU's, with no dependencies; QMP re-exports it, QmpClient (a QMP client on a unix
// or tcp socket) builds on it.
package.dependencies.append(.package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"))
package.products.append(.executable(name: "svmm-migrate", targets: ["svmm-migrate"]))
package.targets.first { $0.name == "QMP" }?.dependencies.append("QmpJSON")
package.targets += [
    .target(name: "QmpJSON"),
    .target(name: "QmpClient", dependencies: ["QmpJSON"]),
    .executableTarget(name: "svmm-migrate", dependencies: [
        "QmpClient", "QmpJSON", .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),
    .testTarget(name: "QmpClientTests", dependencies: ["QmpClient", "QmpJSON"]),
    .testTarget(name: "SvmmMigrateTests", dependencies: ["svmm-migrate", "QmpClient", "QmpJSON"]),
]

// `-sandbox on`: the seccomp allowlist (Sources/Sandbox) over libseccomp (CSeccomp, a module map
// only); MachineConfig carries the parsed options, svmm installs the filter once set-up is done.
package.targets += [
    .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp"),
    .target(name: "Sandbox", dependencies: ["CSeccomp"]),
    .testTarget(name: "SandboxTests", dependencies: ["Sandbox"]),
]
package.targets.first { $0.name == "Machine" }?.dependencies.append("Sandbox")
package.targets.first { $0.name == "svmm" }?.dependencies.append("Sandbox")
package.targets.first { $0.name == "CommandLineOptions" }?.dependencies.append("Sandbox")
