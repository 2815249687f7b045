import Foundation
import Glibc
@testable import NBD

/// A hand-driven NBD client on a blocking socket, to send exactly the bytes a test wants.
final class RawPeer {
    struct Reply {
        var handle: UInt64 = 0
        var error: UInt32 = 0
        var message = ""
        var data: [UInt8] = []
        var chunkTypes: [UInt16] = []
        var extents: [(length: UInt32, flags: UInt32)] = []
        /// Each BLOCK_STATUS chunk's context id, extents and whether it carried DONE.
        var statusChunks: [(contextID: UInt32, extents: [(length: UInt32, flags: UInt32)], done: Bool)] = []
    }

    let fd: Int32

    init(unix path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw TestFailure("connect \(path): \(String(cString: strerror(errno)))")
        }
        setTimeout(10)
    }

    deinit { close(fd) }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    func setTimeout(_ seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    // MARK: bytes

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            guard n > 0 else { throw TestFailure(n == 0 ? "end of file after \(done) of \(count) bytes" : "read: \(String(cString: strerror(errno)))") }
            done += n
        }
        return bytes
    }

    /// True when the server closed the connection (reading gives end of file or a reset).
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(fd, &byte, 1)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    // MARK: negotiation

    func greeting() throws {
        var reader = WireReader(try read(18))
        guard reader.u64() == NbdProtocol.initMagic, reader.u64() == NbdProtocol.optionMagic, reader.u16() == 3 else {
            throw TestFailure("bad greeting")
        }
    }

    func sendClientFlags(_ flags: UInt32 = 3) throws {
        var writer = WireWriter()
        writer.u32(flags)
        try send(writer.bytes)
    }

    func option(_ option: UInt32, _ data: [UInt8] = []) throws {
        var writer = WireWriter()
        writer.u64(NbdProtocol.optionMagic)
        writer.u32(option)
        writer.u32(UInt32(data.count))
        writer.append(data)
        try send(writer.bytes)
    }

    func optionReply() throws -> (option: UInt32, type: UInt32, payload: [UInt8]) {
        var reader = WireReader(try read(20))
        guard reader.u64() == NbdProtocol.optionReplyMagic else { throw TestFailure("bad option reply magic") }
        let option = reader.u32()!, type = reader.u32()!, length = Int(reader.u32()!)
        return (option, type, try read(length))
    }

    static func goData(_ name: String, infos: [UInt16] = []) -> [UInt8] {
        var writer = WireWriter()
        writer.u32(UInt32(name.utf8.count))
        writer.append(name)
        writer.u16(UInt16(infos.count))
        for info in infos { writer.u16(info) }
        return writer.bytes
    }

    static func metaData(_ name: String, queries: [String]) -> [UInt8] {
        var writer = WireWriter()
        writer.u32(UInt32(name.utf8.count))
        writer.append(name)
        writer.u32(UInt32(queries.count))
        for query in queries {
            writer.u32(UInt32(query.utf8.count))
            writer.append(query)
        }
        return writer.bytes
    }

    /// Greeting, flags, optional STRUCTURED_REPLY and SET_META_CONTEXT (of `contexts`), GO:
    /// returns size and flags.
    @discardableResult
    func negotiate(export: String, structured: Bool = true, blockStatus: Bool = false,
                   contexts: [String] = [NbdProtocol.baseAllocation]) throws -> (size: UInt64, flags: UInt16) {
        try greeting()
        try sendClientFlags()
        if structured {
            try option(NbdOption.structuredReply)
            guard try optionReply().type == NbdOptionReply.ack else { throw TestFailure("structured reply refused") }
        }
        if blockStatus {
            try option(NbdOption.setMetaContext, Self.metaData(export, queries: contexts))
            while try optionReply().type != NbdOptionReply.ack {}
        }
        try option(NbdOption.go, Self.goData(export))
        var result: (UInt64, UInt16) = (0, 0)
        while true {
            let reply = try optionReply()
            if reply.type == NbdOptionReply.ack { return result }
            guard reply.type == NbdOptionReply.info else { throw TestFailure("GO failed: \(reply.type) \(String(decoding: reply.payload, as: UTF8.self))") }
            var reader = WireReader(reply.payload)
            if reader.u16() == NbdOptionReply.infoExport { result = (reader.u64()!, reader.u16()!) }
        }
    }

    // MARK: transmission

    func request(_ type: UInt16, handle: UInt64, offset: UInt64, length: UInt32, flags: NbdCommandFlags = [], data: [UInt8] = []) throws {
        let header = NbdRequestHeader(flags: flags, type: type, handle: handle, offset: offset, length: length)
        try send(header.encoded + data)
    }

    /// The next reply (all chunks until DONE); `readLength` gives each READ handle's length for simple replies.
    func reply(readLength: (UInt64) -> Int = { _ in 0 }) throws -> Reply {
        var reader = WireReader(try read(4))
        let magic = reader.u32()!
        if magic == NbdProtocol.simpleReplyMagic {
            var rest = WireReader(try read(12))
            var reply = Reply(handle: 0, error: rest.u32()!)
            reply.handle = rest.u64()!
            if reply.error == 0 { reply.data = try read(readLength(reply.handle)) }
            return reply
        }
        guard magic == NbdProtocol.structuredReplyMagic else { throw TestFailure("bad reply magic 0x\(String(magic, radix: 16))") }
        var reply = Reply()
        var first = true
        while true {
            if !first {
                var again = WireReader(try read(4))
                guard again.u32() == NbdProtocol.structuredReplyMagic else { throw TestFailure("bad chunk magic") }
            }
            first = false
            if try readChunk(into: &reply) { return reply }
        }
    }

    /// Reads one chunk after its magic; true when it was the last.
    private func readChunk(into reply: inout Reply) throws -> Bool {
        var header = WireReader(try read(16))
        let flags = header.u16()!, type = header.u16()!
        reply.handle = header.u64()!
        var payload = WireReader(try read(Int(header.u32()!)))
        reply.chunkTypes.append(type)
        switch type {
        case NbdReplyChunk.offsetData:
            _ = payload.u64()
            reply.data += payload.rest()
        case NbdReplyChunk.error:
            reply.error = payload.u32()!
            let length = Int(payload.u16()!)
            reply.message = String(decoding: payload.take(length)!, as: UTF8.self)
        case NbdReplyChunk.blockStatus:
            let contextID = payload.u32()!
            var extents: [(length: UInt32, flags: UInt32)] = []
            while let length = payload.u32(), let flags = payload.u32() { extents.append((length, flags)) }
            reply.extents += extents
            reply.statusChunks.append((contextID, extents, flags & NbdProtocol.replyFlagDone != 0))
        default:
            break
        }
        return flags & NbdProtocol.replyFlagDone != 0
    }
}
