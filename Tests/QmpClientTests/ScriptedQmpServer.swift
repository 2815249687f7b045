import Foundation
import Glibc
import QmpJSON

/// A QMP peer in the test process, on a real unix or TCP socket: it sends a greeting, then
/// answers each request from a table of canned messages (`ID` in them is replaced by the
/// request's id). A command missing from the table gets QEMU's CommandNotFound. It serves one
/// connection on a thread of its own and ends when the client goes away. The thread alone
/// touches the listening descriptor (it waits at most `acceptTimeout` for the client, then
/// closes it): closing it from another thread let its number be reused under a pending accept.
final class ScriptedQmpServer: Sendable {
    struct Script: Sendable {
        /// nil: accept and say nothing (a QEMU whose monitor is busy with another client).
        var greeting: String? = #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": []}}"#
        /// Messages sent in answer to a command, in order, each written on its own.
        var replies: [String: [String]] = ["qmp_capabilities": [#"{"return": {}, "id": ID}"#]]
        /// Close the connection on receiving this command, without answering.
        var closeOn: String?
    }

    let path: String
    let port: Int
    static let acceptTimeout: Int32 = 10_000

    /// A unix socket in a fresh temporary directory (`tcp: true`: 127.0.0.1 on a free port).
    init(_ script: Script, tcp: Bool = false) throws {
        if tcp {
            let (fd, number) = try Self.listenTCP()
            port = number
            path = ""
            Thread.detachNewThread { Self.serve(fd, script) }
        } else {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("qmp-\(UUID().uuidString.prefix(8)).sock").path
            let fd = try Self.listenUnix(path)
            port = 0
            Thread.detachNewThread { Self.serve(fd, script) }
        }
    }

    deinit {
        if !path.isEmpty { unlink(path) }
    }

    private static func listenUnix(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        return fd
    }

    private static func listenTCP() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, size) == 0 && listen(fd, 4) == 0 && getsockname(fd, pointer, &size) == 0
            }
        }
        guard fd >= 0, bound else { throw POSIXError(.EADDRINUSE) }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    private static func send(_ fd: Int32, _ text: String) {
        let bytes = Array((text + "\r\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private static func serve(_ listener: Int32, _ script: Script) {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        let fd = poll(&poller, 1, acceptTimeout) == 1 ? accept(listener, nil, nil) : -1
        Glibc.close(listener)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        var splitter = JSONStreamSplitter()
        var buffer = [UInt8](repeating: 0, count: 4096)
        guard let greeting = script.greeting else {
            while recv(fd, &buffer, buffer.count, 0) > 0 {}
            return
        }
        send(fd, greeting)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            for case .text(let text) in splitter.feed(buffer.prefix(count)) {
                guard let request = try? JSONParser.parse(text), let command = request["execute"]?.stringValue else { continue }
                if command == script.closeOn { return }
                let id = request["id"]?.serialized ?? "null"
                let messages = script.replies[command]
                    ?? [#"{"id": ID, "error": {"class": "CommandNotFound", "desc": "The command \#(command) has not been found"}}"#]
                for message in messages { send(fd, message.replacingOccurrences(of: "ID", with: id)) }
            }
        }
    }
}
