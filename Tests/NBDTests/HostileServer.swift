import Foundation
import Glibc
@testable import NBD

/// A scripted NBD server on a unix socket that says what a test wants, however wrong: it
/// negotiates (fixed newstyle, structured replies, GO with the given export size), then answers
/// each request with the bytes `reply` makes of it, on its own thread.
final class HostileServer: @unchecked Sendable {
    let path: String
    private let directory: URL
    private let listener: Int32
    private let size: UInt64
    private let reply: @Sendable (_ type: UInt16, _ handle: UInt64, _ offset: UInt64, _ length: UInt32) -> [UInt8]
    private let finished = DispatchSemaphore(value: 0)

    init(size: UInt64, reply: @escaping @Sendable (UInt16, UInt64, UInt64, UInt32) -> [UInt8] = { _, _, _, _ in [] }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("s.sock").path
        self.size = size
        self.reply = reply
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
        Thread { [self] in serve() }.start()
    }

    /// Waits for the session to end: the client closed the connection (or went silent for 10 s).
    func waitUntilClientLeaves() { finished.wait() }

    deinit {
        close(listener)
        try? FileManager.default.removeItem(at: directory)
    }

    private func serve() {
        defer { finished.signal() }
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard negotiate(fd) else { return }
        while let request = read(fd, 28) {
            var reader = WireReader(request)
            _ = reader.u32(); _ = reader.u16()
            let type = reader.u16()!, handle = reader.u64()!, offset = reader.u64()!, length = reader.u32()!
            if type == NbdCommand.disconnect { return }
            if type == NbdCommand.write { guard read(fd, Int(length)) != nil else { return } }
            guard send(fd, reply(type, handle, offset, length)) else { return }
        }
    }

    private func negotiate(_ fd: Int32) -> Bool {
        var greeting = WireWriter()
        greeting.u64(NbdProtocol.initMagic)
        greeting.u64(NbdProtocol.optionMagic)
        greeting.u16(NbdProtocol.flagFixedNewstyle | NbdProtocol.flagNoZeroes)
        guard send(fd, greeting.bytes), read(fd, 4) != nil else { return false }
        while let header = read(fd, 16) {
            var reader = WireReader(header)
            _ = reader.u64()
            let option = reader.u32()!, length = reader.u32()!
            guard read(fd, Int(length)) != nil else { return false }
            switch option {
            case NbdOption.structuredReply:
                guard send(fd, Self.optionReply(option, NbdOptionReply.ack, [])) else { return false }
            case NbdOption.go:
                var info = WireWriter()
                info.u16(NbdOptionReply.infoExport)
                info.u64(size)
                info.u16(1 | (1 << 3))  // HAS_FLAGS | SEND_FLUSH
                guard send(fd, Self.optionReply(option, NbdOptionReply.info, info.bytes)),
                      send(fd, Self.optionReply(option, NbdOptionReply.ack, [])) else { return false }
                return true
            default:
                guard send(fd, Self.optionReply(option, NbdOptionReply.errUnsupported, [])) else { return false }
            }
        }
        return false
    }

    static func optionReply(_ option: UInt32, _ type: UInt32, _ payload: [UInt8]) -> [UInt8] {
        NbdReplyEncoder.optionReply(option, type: type, payload: payload)
    }

    /// A structured reply chunk (the server's own encoder, with a payload the test makes up).
    static func chunk(handle: UInt64, type: UInt16, done: Bool, _ payload: [UInt8]) -> [UInt8] {
        NbdReplyEncoder.chunkHeader(handle: handle, type: type, flags: done ? NbdProtocol.replyFlagDone : 0, length: payload.count)
            + payload
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    private func read(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }
}
