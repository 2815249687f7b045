import Block
import Foundation
import Glibc
import Testing
@testable import NBD

/// Hostile and broken clients, driven byte by byte: the server answers or drops only them.
@Suite(.serialized) struct ServerBadInputTests {
    /// A fresh client still gets served (GO and a read).
    func expectServing(_ fixture: ExportFixture) throws {
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        try peer.request(NbdCommand.read, handle: 9, offset: 0, length: 512)
        let reply = try peer.reply()
        #expect(reply.error == 0 && reply.handle == 9)
        #expect(Data(reply.data) == ExportFixture.expectedImage().prefix(512))
    }

    @Test func garbageOptionMagicDropsTheClient() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.greeting()
        try peer.sendClientFlags()
        try peer.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(peer.isClosedByServer())
        try expectServing(fixture)
    }

    @Test func unknownClientFlagsDropTheClient() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.greeting()
        try peer.sendClientFlags(0x80)
        #expect(peer.isClosedByServer())
        try expectServing(fixture)
    }

    @Test func truncatedHandshakesDoNotDisturbOthers() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        do {
            let silent = try RawPeer(unix: fixture.socketPath)
            _ = silent
        }
        do {
            let partial = try RawPeer(unix: fixture.socketPath)
            try partial.greeting()
            try partial.send([0, 0])
        }
        do {
            let halfOption = try RawPeer(unix: fixture.socketPath)
            try halfOption.greeting()
            try halfOption.sendClientFlags()
            try halfOption.send(Array(NbdRequestHeader(type: 0, handle: 0, offset: 0, length: 0).encoded.prefix(10)))
        }
        try expectServing(fixture)
        #expect(try waitFor { try fixture.loop.sync { fixture.server.connectionCount } == 0 })
    }

    @Test func unknownOptionIsUnsupportedThenGoWorks() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.greeting()
        try peer.sendClientFlags()
        try peer.option(99, Array("xyz".utf8))
        let reply = try peer.optionReply()
        #expect(reply.option == 99 && reply.type == NbdOptionReply.errUnsupported)
        #expect(String(decoding: reply.payload, as: UTF8.self) == "Unsupported option 99 (<unknown>)")
        try peer.option(NbdOption.structuredReply)
        #expect(try peer.optionReply().type == NbdOptionReply.ack)
        try peer.option(NbdOption.structuredReply)
        let again = try peer.optionReply()
        #expect(again.type == NbdOptionReply.errInvalid)
        #expect(String(decoding: again.payload, as: UTF8.self) == "structured reply already negotiated")
        try peer.option(NbdOption.go, RawPeer.goData("nope"))
        let missing = try peer.optionReply()
        #expect(missing.type == NbdOptionReply.errUnknown)
        #expect(String(decoding: missing.payload, as: UTF8.self) == "export 'nope' not present")
        try peer.option(NbdOption.startTLS)
        #expect(try peer.optionReply().type == NbdOptionReply.errPolicy)
        try peer.option(NbdOption.list, [1])
        #expect(try peer.optionReply().type == NbdOptionReply.errInvalid)
        try peer.option(NbdOption.go, RawPeer.goData("exp", infos: [NbdOptionReply.infoName]))
        var types: [UInt16] = []
        while true {
            let info = try peer.optionReply()
            if info.type == NbdOptionReply.ack { break }
            var reader = WireReader(info.payload)
            types.append(reader.u16()!)
        }
        #expect(types == [NbdOptionReply.infoName, NbdOptionReply.infoBlockSize, NbdOptionReply.infoExport])
        try peer.request(NbdCommand.read, handle: 1, offset: 4096, length: 4096)
        #expect(try Data(peer.reply().data) == ExportFixture.expectedImage()[4096..<8192])
    }

    @Test func readBeyondTheEndIsEINVALAndTheConnectionLives() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        for structured in [true, false] {
            let peer = try RawPeer(unix: fixture.socketPath)
            try peer.negotiate(export: "exp", structured: structured)
            try peer.request(NbdCommand.read, handle: 5, offset: UInt64(ExportFixture.size), length: 512)
            let failed = try peer.reply()
            #expect(failed.handle == 5 && failed.error == 22)
            if structured {
                #expect(failed.message == "operation past EOF; From: 67108864, Len: 512, Size: 67108864")
            }
            try peer.request(NbdCommand.write, handle: 6, offset: UInt64(ExportFixture.size) - 256, length: 512, data: [UInt8](repeating: 1, count: 512))
            #expect(try peer.reply().error == 22)
            try peer.request(NbdCommand.read, handle: 7, offset: 0, length: 1024)
            let good = try peer.reply { _ in 1024 }
            #expect(good.error == 0 && Data(good.data) == ExportFixture.expectedImage().prefix(1024))
        }
    }

    @Test func oversizedRequests() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        try peer.request(NbdCommand.read, handle: 1, offset: 0, length: UInt32(NbdProtocol.maxBufferSize + 1))
        let read = try peer.reply()
        #expect(read.error == 22)
        #expect(read.message == "len (33554433 ) is larger than max len (33554432)")
        try peer.request(NbdCommand.read, handle: 2, offset: 0, length: 16)
        #expect(try peer.reply().data.count == 16)
        // An oversized WRITE's data cannot be skipped safely: answered, then dropped.
        try peer.request(NbdCommand.write, handle: 3, offset: 0, length: UInt32(NbdProtocol.maxBufferSize + 1))
        #expect(try peer.reply().error == 22)
        #expect(peer.isClosedByServer())
        try expectServing(fixture)
    }

    @Test func readOnlyExportAndBadFlagsAnswerEINVALWithQEMUsMessages() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        try fixture.addExport(name: "ro", writable: false)
        let peer = try RawPeer(unix: fixture.socketPath)
        let (_, flags) = try peer.negotiate(export: "ro")
        #expect(NbdTransmissionFlags(rawValue: flags).contains(.readOnly))
        try peer.request(NbdCommand.write, handle: 1, offset: 0, length: 512, data: [UInt8](repeating: 9, count: 512))
        let write = try peer.reply()
        #expect(write.error == 22 && write.message == "Export is read-only")
        try peer.request(NbdCommand.flush, handle: 2, offset: 0, length: 0, flags: .noHole)
        #expect(try peer.reply().message == "unsupported flags for command flush (got 0x2)")
        try peer.request(42, handle: 3, offset: 0, length: 0)
        #expect(try peer.reply().message == "invalid request type (42) received")
        try peer.request(NbdCommand.blockStatus, handle: 4, offset: 0, length: 4096)
        #expect(try peer.reply().message == "CMD_BLOCK_STATUS not negotiated")
        #expect(ExportFixture.expectedImage().prefix(512) == (try Data(contentsOf: URL(fileURLWithPath: fixture.imagePath)).prefix(512)))
    }

    @Test func aClientVanishingMidWriteChangesNothing() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        do {
            let peer = try RawPeer(unix: fixture.socketPath)
            try peer.negotiate(export: "exp")
            try peer.request(NbdCommand.write, handle: 1, offset: 0, length: 1 << 20, data: [UInt8](repeating: 0xee, count: 512 << 10))
        }
        #expect(try waitFor { try fixture.loop.sync { fixture.server.connectionCount } == 0 })
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        try peer.request(NbdCommand.read, handle: 2, offset: 0, length: 1 << 20)
        #expect(Data(try peer.reply().data) == ExportFixture.expectedImage().prefix(1 << 20))
    }

    @Test func manyPipelinedRequestsAllGetTheirReplies() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        let count = 100, size = 64 << 10
        var batch: [UInt8] = []
        for index in 0..<count {
            batch += NbdRequestHeader(type: NbdCommand.read, handle: UInt64(index), offset: UInt64(index * size), length: UInt32(size)).encoded
        }
        try peer.send(batch)
        let image = ExportFixture.expectedImage()
        var seen = Set<UInt64>()
        for _ in 0..<count {
            let reply = try peer.reply()
            let start = Int(reply.handle) * size
            #expect(Data(reply.data) == image[start..<start + size])
            seen.insert(reply.handle)
        }
        #expect(seen.count == count)
    }

    @Test func writesWithFUAZeroesTrimAndBlockStatus() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp", blockStatus: true)
        try peer.request(NbdCommand.blockStatus, handle: 1, offset: 0, length: UInt32(ExportFixture.size))
        let status = try peer.reply()
        #expect(status.extents.map(\.length) == [16 << 20, 16 << 20, 32 << 20])
        #expect(status.extents.map(\.flags) == [0, 3, 0])
        try peer.request(NbdCommand.blockStatus, handle: 2, offset: 0, length: UInt32(ExportFixture.size), flags: .requestOne)
        #expect(try peer.reply().extents.count == 1)
        try peer.request(NbdCommand.write, handle: 3, offset: 8192, length: 4096, flags: .fua, data: [UInt8](repeating: 0xab, count: 4096))
        try peer.request(NbdCommand.writeZeroes, handle: 4, offset: 0, length: 4096, flags: [.noHole, .fastZero])
        try peer.request(NbdCommand.trim, handle: 5, offset: 1 << 20, length: 1 << 20)
        try peer.request(NbdCommand.flush, handle: 6, offset: 0, length: 0)
        try peer.request(NbdCommand.cache, handle: 7, offset: 0, length: 4096)
        for _ in 0..<5 { #expect(try peer.reply().error == 0) }
        try peer.request(NbdCommand.read, handle: 8, offset: 0, length: 12288, flags: .dontFragment)
        let read = try peer.reply()
        #expect(read.data[0..<4096].allSatisfy { $0 == 0 })
        #expect(read.data[8192..<12288].allSatisfy { $0 == 0xab })
        #expect(read.chunkTypes == [NbdReplyChunk.offsetData])
    }

    @Test func aSlowReaderDoesNotBlockOtherClients() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let slow = try RawPeer(unix: fixture.socketPath)
        try slow.negotiate(export: "exp")
        var batch: [UInt8] = []
        for index in 0..<64 {
            batch += NbdRequestHeader(type: NbdCommand.read, handle: UInt64(index), offset: 0, length: 1 << 20).encoded
        }
        try slow.send(batch)
        usleep(200_000)
        // 64 MiB of replies cannot fit the socket's buffers: the server holds most of them while
        // the slow peer reads nothing. Another client is served meanwhile (were the loop blocked
        // on the slow peer, this would wait until the peer's socket timeout and fail).
        try expectServing(fixture)
        for _ in 0..<64 { #expect(try slow.reply().data.count == 1 << 20) }
    }

    @Test func removeExportSafeRefusesWhileInUseAndHardDisconnects() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        #expect(throws: BlockError("export 'exp' still in use", errno: EBUSY)) {
            try fixture.loop.sync { try fixture.server.removeExport(name: "exp", mode: .safe) }
        }
        #expect(throws: BlockError("Export 'nope' is not found", errno: ENOENT)) {
            try fixture.loop.sync { try fixture.server.removeExport(name: "nope") }
        }
        try fixture.loop.sync { try fixture.server.removeExport(name: "exp", mode: .hard) }
        #expect(peer.isClosedByServer())
        #expect(try waitFor { try fixture.loop.sync { fixture.deleted } == ["exp"] })
        let late = try RawPeer(unix: fixture.socketPath)
        try late.greeting()
        try late.sendClientFlags()
        try late.option(NbdOption.go, RawPeer.goData("exp"))
        #expect(try late.optionReply().type == NbdOptionReply.errUnknown)
        try fixture.addExport(name: "exp", writable: true)
        try fixture.loop.sync { try fixture.server.removeExport(name: "exp") }
    }

    @Test func stopClosesClientsAndTheListener() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let peer = try RawPeer(unix: fixture.socketPath)
        try peer.negotiate(export: "exp")
        let negotiating = try RawPeer(unix: fixture.socketPath)
        try negotiating.greeting()
        try fixture.loop.sync { fixture.server.stop() }
        #expect(peer.isClosedByServer())
        #expect(negotiating.isClosedByServer())
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
        #expect(throws: BlockError("NBD server not running", errno: EINVAL)) {
            try fixture.addExport(name: "late", writable: false)
        }
    }
}

/// Polls `condition` for up to five seconds.
func waitFor(_ condition: () throws -> Bool) throws -> Bool {
    let deadline = Date().addingTimeInterval(5)
    while Date() < deadline {
        if try condition() { return true }
        usleep(10_000)
    }
    return false
}
