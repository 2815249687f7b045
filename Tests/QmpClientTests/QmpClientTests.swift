import Foundation
import Glibc
import QmpClient
import QmpJSON
import Testing

@Suite struct QmpClientTests {
    /// The error `body` throws (nil if none); a `catch Pattern` clause crashed the 6.3 compiler here.
    private func failure(_ body: () throws(QmpClientError) -> Void) -> QmpClientError? {
        do { try body() } catch { return error }
        return nil
    }

    private func connect(_ server: ScriptedQmpServer) throws -> QmpClient {
        try QmpClient(connectingTo: .unix(path: server.path), timeout: 5)
    }

    @Test func negotiatesAndReturnsTheCommandsValue() throws {
        var script = ScriptedQmpServer.Script()
        script.replies["query-status"] = [#"{"return": {"status": "inmigrate", "singlestep": false, "running": false}, "id": ID}"#]
        let client = try connect(try ScriptedQmpServer(script))
        #expect(client.version == "7.2.0")
        let status = try client.execute("query-status")
        #expect(status["status"] == .string("inmigrate"))
        #expect(status["running"]?.boolValue == false)
    }

    @Test func anErrorReplyCarriesQemusClassAndDesc() throws {
        let client = try connect(try ScriptedQmpServer(ScriptedQmpServer.Script()))
        #expect(throws: QmpClientError.commandFailed(command: "no-such-command", errorClass: "CommandNotFound",
                                                     desc: "The command no-such-command has not been found")) {
            try client.execute("no-such-command", .members(["x": .int(1)]))
        }
    }

    @Test func eventsThatArriveBeforeAReplyAreQueuedInOrder() throws {
        var script = ScriptedQmpServer.Script()
        script.replies["stop"] = [
            #"{"event": "JOB_STATUS_CHANGE", "data": {"id": "j0", "status": "running"}, "timestamp": {"seconds": 10, "microseconds": 500000}}"#,
            #"{"event": "STOP", "timestamp": {"seconds": 11, "microseconds": 0}}"#,
            #"{"event": "JOB_STATUS_CHANGE", "data": {"id": "j0", "status": "ready"}, "timestamp": {"seconds": 12, "microseconds": 0}}"#,
            #"{"return": {}, "id": ID}"#,
        ]
        let client = try connect(try ScriptedQmpServer(script))
        try client.execute("stop")
        let ready = try client.waitForEvent("JOB_STATUS_CHANGE", matching: { $0["status"] == .string("ready") }, timeout: 1)
        #expect(ready.timestamp == 12)
        let rest = try client.takeEvents()
        #expect(rest.map(\.name) == ["JOB_STATUS_CHANGE", "STOP"])
        #expect(rest[0].data["status"] == .string("running") && rest[0].timestamp == 10.5)
        #expect(rest[1].data == .emptyObject)
        #expect(try client.takeEvents().isEmpty)
    }

    @Test func anEventThatArrivesLaterIsWaitedFor() throws {
        var script = ScriptedQmpServer.Script()
        script.replies["cont"] = [#"{"return": {}, "id": ID}"#, #"{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}"#]
        let client = try connect(try ScriptedQmpServer(script))
        try client.execute("cont")
        #expect(try client.waitForEvent("RESUME", timeout: 5).name == "RESUME")
    }

    @Test func waitingForAnEventThatNeverComesTimesOut() throws {
        let server = try ScriptedQmpServer(ScriptedQmpServer.Script())
        let client = try connect(server)
        let started = Deadline.now()
        #expect(throws: QmpClientError.timedOut(address: "unix:\(server.path)", waitingFor: "event BLOCK_JOB_READY", seconds: 0.3)) {
            try client.waitForEvent("BLOCK_JOB_READY", timeout: 0.3)
        }
        #expect(Deadline.now() - started >= 0.3)
    }

    @Test func aPeerThatNeverGreetsTimesOut() throws {
        var script = ScriptedQmpServer.Script()
        script.greeting = nil
        let server = try ScriptedQmpServer(script)
        #expect(throws: QmpClientError.timedOut(address: "unix:\(server.path)", waitingFor: "the QMP greeting", seconds: 0.3)) {
            try QmpClient(connectingTo: .unix(path: server.path), timeout: 0.3)
        }
    }

    @Test func aSocketNobodyListensOnIsUnreachable() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nobody-\(UUID().uuidString.prefix(8)).sock").path
        #expect(throws: QmpClientError.unreachable(address: "unix:\(path)", reason: "No such file or directory")) {
            try QmpClient(connectingTo: .unix(path: path), timeout: 1)
        }
    }

    @Test func aClosedTCPPortIsUnreachable() throws {
        // Bind a port and close it unlistened: nothing listens there afterwards.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, size) == 0 && getsockname(probe, $0, &size) == 0 }
        }
        close(probe)
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let error = failure { () throws(QmpClientError) in _ = try QmpClient(connectingTo: .tcp(host: "127.0.0.1", port: String(port)), timeout: 1) }
        #expect(error == .unreachable(address: "tcp:127.0.0.1:\(port)", reason: "Connection refused"))
    }

    @Test func worksOverTCP() throws {
        var script = ScriptedQmpServer.Script()
        script.replies["query-name"] = [#"{"return": {"name": "dst"}, "id": ID}"#]
        let server = try ScriptedQmpServer(script, tcp: true)
        let client = try QmpClient(connectingTo: .tcp(host: "127.0.0.1", port: String(server.port)), timeout: 5)
        #expect(try client.execute("query-name")["name"] == .string("dst"))
    }

    @Test func aPeerWithoutAGreetingIsNotQMP() throws {
        var script = ScriptedQmpServer.Script()
        script.greeting = #"{"hello": "world"}"#
        let server = try ScriptedQmpServer(script)
        #expect(throws: QmpClientError.protocolViolation(address: "unix:\(server.path)", reason: #"expected a greeting, got {"hello": "world"}"#)) {
            try QmpClient(connectingTo: .unix(path: server.path), timeout: 5)
        }
    }

    @Test func garbageFromThePeerIsAProtocolViolation() throws {
        var script = ScriptedQmpServer.Script()
        script.greeting = "SSH-2.0-OpenSSH_9.2"
        let server = try ScriptedQmpServer(script)
        guard case .protocolViolation(_, let reason)? = failure({ () throws(QmpClientError) in _ = try QmpClient(connectingTo: .unix(path: server.path), timeout: 5) }) else {
            Issue.record("accepted a peer that is not QMP")
            return
        }
        #expect(reason.hasPrefix("JSON parse error"))
    }

    @Test func aPeerThatHangsUpMidCommandIsDisconnected() throws {
        var script = ScriptedQmpServer.Script()
        script.closeOn = "quit"
        let server = try ScriptedQmpServer(script)
        let client = try connect(server)
        #expect(throws: QmpClientError.disconnected(address: "unix:\(server.path)", reason: "end of file")) {
            try client.execute("quit")
        }
    }

    @Test func addressesParseAsQemuSpellsThem() {
        #expect(QmpAddress(parsing: "unix:/run/qmp.sock") == .unix(path: "/run/qmp.sock"))
        #expect(QmpAddress(parsing: "/run/qmp.sock") == .unix(path: "/run/qmp.sock"))
        #expect(QmpAddress(parsing: "tcp:127.0.0.1:4444") == .tcp(host: "127.0.0.1", port: "4444"))
        #expect(QmpAddress(parsing: "tcp:[::1]:4444") == .tcp(host: "::1", port: "4444"))
        #expect(QmpAddress(parsing: "tcp:[::1]:4444")?.description == "tcp:[::1]:4444")
        for bad in ["", "unix:", "tcp:host", "tcp::4444", "tcp:h:0", "tcp:h:65536", "tcp:h:x"] {
            #expect(QmpAddress(parsing: bad) == nil, "\(bad)")
        }
    }
}
