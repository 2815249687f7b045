import Testing
@testable import Migration

/// Migration URIs as QEMU 7.2 takes them, and the parameter checks in its words.
@Suite struct MigrationUriTests {
    @Test func unixTcpAndExecAreParsed() {
        #expect(MigrationUri("unix:/tmp/m.sock") == .unix("/tmp/m.sock"))
        #expect(MigrationUri("tcp:127.0.0.1:4444") == .tcp(host: "127.0.0.1", port: "4444"))
        #expect(MigrationUri("tcp:[::1]:4444") == .tcp(host: "::1", port: "4444"))
        #expect(MigrationUri("tcp::4444") == .tcp(host: "0.0.0.0", port: "4444"))
        #expect(MigrationUri("exec:cat > /tmp/vm.state") == .exec("cat > /tmp/vm.state"))
    }

    @Test(arguments: ["", "foo:bar", "unix:", "exec:", "tcp:host", "tcp:host:", "tcp:host:port", "fd:3", "rdma:h:1"])
    func anythingElseIsNotAMigrationProtocol(text: String) {
        #expect(MigrationUri(text) == nil)
    }

    @Test func downtimeAndBandwidthAreRangeChecked() throws {
        #expect(try MigrationParameters.checkDowntime(2_000_000) == UInt64(2_000_000))
        #expect(throws: MigrationError("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms")) {
            try MigrationParameters.checkDowntime(2_000_001)
        }
        #expect(throws: MigrationError.self) { try MigrationParameters.checkDowntime(-1) }
        #expect(throws: MigrationError.self) { try MigrationParameters.checkBandwidth(-1) }
        #expect(try MigrationParameters.checkBandwidth(1 << 30) == 1 << 30)
    }

    @Test func theDefaultsAreQemus() {
        let defaults = MigrationParameters()
        #expect(defaults.maxBandwidth == 128 << 20 && defaults.downtimeLimit == 300)
        #expect(MigrationCapability.allCases.count == 21)
        let implemented = MigrationCapability.allCases.filter { $0.isImplemented }
        #expect(implemented == [.events, .pauseBeforeSwitchover, .dirtyBitmaps, .lateBlockActivate])
    }

    @Test func statusesInProgressAreQemus() {
        let running: [MigrationStatus] = [.setup, .active, .preSwitchover, .device, .cancelling]
        let over: [MigrationStatus] = [.none, .completed, .failed, .cancelled]
        #expect(running.filter { !$0.isRunning }.isEmpty)
        #expect(over.filter { $0.isRunning }.isEmpty)
    }
}
