import Loop
import Testing
@testable import Migration

/// Migration URIs as QEMU 7.2 takes them, and the parameter checks in its words.
@Suite struct MigrationUriTests {
    @Test func unixTcpAndExecAreParsed() throws {
        #expect(try MigrationUri.parse("unix:/tmp/m.sock") == .socket(.unix(path: "/tmp/m.sock")))
        #expect(try MigrationUri.parse("tcp:127.0.0.1:4444") == .socket(.inet(host: "127.0.0.1", port: "4444")))
        #expect(try MigrationUri.parse("tcp:[::1]:4444") == .socket(.inet(host: "::1", port: "4444")))
        // No host: any address to listen on; to connect to, a name that does not resolve (as QEMU).
        #expect(try MigrationUri.parse("tcp::4444") == .socket(.inet(host: "", port: "4444")))
        // The port is resolved when the socket opens: a service name is an address too.
        #expect(try MigrationUri.parse("tcp:localhost:abc") == .socket(.inet(host: "localhost", port: "abc")))
        #expect(try MigrationUri.parse("exec:cat > /tmp/vm.state") == .exec("cat > /tmp/vm.state"))
        // `exec:` with no command runs the empty one (`sh -c ""`), as QEMU does.
        #expect(try MigrationUri.parse("exec:") == .exec(""))
    }

    @Test(arguments: ["", "foo:bar", "fd:3", "rdma:h:1", "defer", "TCP:h:1"])
    func anythingElseIsNotAMigrationProtocol(text: String) throws {
        #expect(try MigrationUri.parse(text) == nil)
    }

    /// socket_parse and inet_parse's errors, word for word (checked against QEMU 7.2 in the
    /// differential scenario migrate_uri_errors).
    @Test(arguments: [
        ("unix:", "invalid Unix socket address"),
        ("tcp:", "error parsing address ''"),
        ("tcp:host", "error parsing address 'host'"),
        ("tcp:host:", "error parsing address 'host:'"),
        ("tcp::", "error parsing port in address ':'"),
        ("tcp:[::1]", "error parsing IPv6 address '[::1]'"),
        ("tcp:[::1", "error parsing IPv6 address '[::1'"),
        ("tcp:[]:1", "error parsing IPv6 address '[]:1'"),
        ("tcp:" + String(repeating: "h", count: 65) + ":1", "error parsing address '" + String(repeating: "h", count: 65) + ":1'"),
        ("tcp:h:1,ipv4", "svmm does not support socket address options in 'h:1,ipv4'"),
    ])
    func malformedAddressesAreQemusErrors(text: String, message: String) {
        #expect(throws: MigrationError(message)) { try MigrationUri.parse(text) }
    }

    @Test func errorsKeepTheKindOfTheLayerBelow() {
        let socket = SocketError("Failed to connect to '/x': No such file or directory", errno: 2)
        let error = MigrationError(socket)
        #expect(error.description == socket.description && error.kind == .generic)
        #expect(MigrationError(SystemCallError("ioctl KVM_X", errno: 22, kind: .kvmMissingCap)).kind == .kvmMissingCap)
    }

    @Test func downtimeAndBandwidthAreRangeChecked() throws {
        #expect(try MigrationParameters.checkDowntime(2_000_000) == UInt64(2_000_000))
        #expect(throws: MigrationError("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms")) {
            try MigrationParameters.checkDowntime(2_000_001)
        }
        // QMP's -1 arrives as 2^64-1 (QAPI uint64): too long a downtime, a bandwidth with no limit.
        #expect(throws: MigrationError.self) { try MigrationParameters.checkDowntime(UInt64.max) }
        #expect(try MigrationParameters.checkBandwidth(UInt64.max) == UInt64.max)
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
