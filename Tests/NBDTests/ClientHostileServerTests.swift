import Block
import Foundation
import Glibc
import Testing
@testable import NBD

/// NbdClientDriver against a server that lies: every size and offset from the wire is checked
/// before svmm computes with it; a bad reply fails its request and ends the connection, as QEMU's
/// NBD client does.
@Suite struct ClientHostileServerTests {
    @Test(arguments: [UInt64(1) << 63, .max])
    func anExportSizeBeyondInt64IsRefused(size: UInt64) throws {
        let server = try HostileServer(size: size)
        #expect(throws: BlockError("Export size \(size) is too large (the limit is \(Int64.max))", errno: EINVAL)) {
            try ClientHarness(NbdClientOptions(server: .unix(path: server.path))).shutdown()
        }
        server.waitUntilClientLeaves()
    }

    @Test(arguments: [
        (NbdReplyChunk.offsetData, UInt64(0x7fff_ffff_ffff_fff0)),
        (NbdReplyChunk.offsetData, UInt64(1) << 63),
        (NbdReplyChunk.offsetData, UInt64.max),
        (NbdReplyChunk.offsetData, UInt64(4096 + 1)),
        (NbdReplyChunk.offsetHole, UInt64(0x7fff_ffff_ffff_fff0)),
        (NbdReplyChunk.offsetHole, UInt64(1) << 63),
        (NbdReplyChunk.offsetHole, UInt64(4096 - 1)),
    ])
    func aChunkOutsideTheRequestFailsTheReadAndDisconnects(type: UInt16, offset: UInt64) throws {
        let server = try HostileServer(size: 1 << 20) { _, handle, _, length in
            var payload = WireWriter()
            payload.u64(offset)
            if type == NbdReplyChunk.offsetHole {
                payload.u32(length)
            } else {
                payload.zeroes(Int(length))
            }
            return HostileServer.chunk(handle: handle, type: type, done: true, payload.bytes)
        }
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: server.path)))
        defer { client.shutdown() }
        let result = try client.result { $0.read(at: 4096, into: TestBuffer(count: 4096).vector, completion: $1) }
        #expect(throws: BlockError("Protocol error: server sent chunk exceeding requested region", errno: EINVAL)) { try result.get() }
        #expect(try client.onLoop { !$0.isConnected })
        #expect(throws: BlockError("Input/output error", errno: EIO)) { try client.read(0, 512) }
        server.waitUntilClientLeaves()
    }

    @Test func aHoleChunkOfTheWrongLengthFailsTheRead() throws {
        let server = try HostileServer(size: 1 << 20) { _, handle, offset, _ in
            var payload = WireWriter()
            payload.u64(offset)
            payload.u32(512)
            payload.u32(0)  // four bytes too many
            return HostileServer.chunk(handle: handle, type: NbdReplyChunk.offsetHole, done: true, payload.bytes)
        }
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: server.path)))
        defer { client.shutdown() }
        let result = try client.result { $0.read(at: 0, into: TestBuffer(count: 512).vector, completion: $1) }
        #expect(throws: BlockError("Protocol error: invalid payload for NBD_REPLY_TYPE_OFFSET_HOLE", errno: EINVAL)) { try result.get() }
        #expect(try client.onLoop { !$0.isConnected })
    }

    @Test func otherRequestsInFlightFailWithEIOWhenOneReplyIsBad() throws {
        // The first read gets a chunk far outside it; the second is never answered.
        let server = try HostileServer(size: 1 << 20) { _, handle, _, length in
            guard handle == 1 else { return [] }
            var payload = WireWriter()
            payload.u64(UInt64(1) << 62)
            payload.zeroes(Int(length))
            return HostileServer.chunk(handle: handle, type: NbdReplyChunk.offsetData, done: true, payload.bytes)
        }
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: server.path)))
        defer { client.shutdown() }
        let first = TestBuffer(count: 512), second = TestBuffer(count: 512)
        let errnos = ErrnoList()
        _ = try client.result { driver, done in
            let record: IoCompletion = { result in
                if case .failure(let error) = result { errnos.values.append(error.errno) } else { errnos.values.append(0) }
                if errnos.values.count == 2 { done(.success(0)) }
            }
            driver.read(at: 0, into: first.vector, completion: record)
            driver.read(at: 512, into: second.vector, completion: record)
        }
        #expect(errnos.values == [EINVAL, EIO])
    }
}

/// Errnos recorded on the loop thread, read by the test after the loop finished with them.
private final class ErrnoList {
    var values: [Int32] = []
}
