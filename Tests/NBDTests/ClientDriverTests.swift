import Block
import Foundation
import Glibc
import Testing
@testable import NBD

/// NbdClientDriver against qemu-nbd, nbdkit and the in-process server.
@Suite(.serialized) struct ClientDriverTests {
    static let size = 64 << 20

    /// A directory with a 64 MiB pattern image.
    func makeImage() throws -> (directory: URL, image: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nbdc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let image = directory.appendingPathComponent("disk.raw").path
        try ExportFixture.pattern(count: Self.size, seed: 7).write(to: URL(fileURLWithPath: image))
        return (directory, image)
    }

    /// Reads, writes (several in flight, split across 32 MiB), zeroes, trims and flushes.
    func roundTrips(_ client: ClientHarness, original: Data?) throws {
        #expect(try client.onLoop { $0.length } == Int64(Self.size))
        if let original { #expect(try client.read(0, 1 << 20, split: true) == original.prefix(1 << 20)) }
        let written = ExportFixture.pattern(count: 40 << 20, seed: 42)
        try client.write(written, at: 8 << 20)
        #expect(try client.read(8 << 20, 40 << 20) == written)
        #expect(try client.result { $0.writeZeroes(at: 8 << 20, length: 65536, mayUnmap: false, completion: $1) }.get() >= 0)
        #expect(try client.result { $0.writeZeroes(at: 9 << 20, length: 65536, mayUnmap: true, completion: $1) }.get() >= 0)
        #expect(try client.read(8 << 20, 65536).allSatisfy { $0 == 0 })
        #expect(try client.read(9 << 20, 65536).allSatisfy { $0 == 0 })
        #expect(try client.result { $0.discard(at: 60 << 20, length: 1 << 20, completion: $1) }.get() >= 0)
        #expect(try client.result { $0.flush(completion: $1) }.get() >= 0)
        try concurrentReads(client, expected: written)
    }

    /// 32 reads in flight at once, completing in any order.
    func concurrentReads(_ client: ClientHarness, expected: Data) throws {
        let buffers = (0..<32).map { _ in TestBuffer(count: 256 << 10) }
        let result = try client.result { driver, done in
            let split = SplitCompletion(pieces: buffers.count, completion: done)
            for (index, buffer) in buffers.enumerated() {
                driver.read(at: Int64((10 << 20) + index * (256 << 10)), into: buffer.vector, completion: split.pieceDone)
            }
        }
        #expect(try result.get() == 32 * (256 << 10))
        for (index, buffer) in buffers.enumerated() {
            let start = (2 << 20) + index * (256 << 10)
            #expect(buffer.data == expected[start..<start + (256 << 10)])
        }
    }

    @Test func againstQemuNbdOverAUnixSocket() throws {
        let (directory, image) = try makeImage()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("q.sock").path
        let peer = try PeerProcess("qemu-nbd", ["-t", "-f", "raw", "-k", socket, "-x", "exp", image])
        try peer.waitForSocket(socket)
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: socket), export: "exp"))
        defer { client.shutdown() }
        let info = try client.onLoop { $0.info }
        #expect(info.structured)
        #expect(info.maximumBlock == 33_554_432)
        #expect(try !client.onLoop { $0.isReadOnly })
        try roundTrips(client, original: ExportFixture.pattern(count: Self.size, seed: 7))
        try client.onLoop { $0.close() }
        peer.stop()
        let file = try Data(contentsOf: URL(fileURLWithPath: image))
        #expect(file[(12 << 20)..<(13 << 20)] == ExportFixture.pattern(count: 40 << 20, seed: 42)[(4 << 20)..<(5 << 20)])
    }

    @Test func againstAReadOnlyQemuNbdOverTCP() throws {
        let (directory, image) = try makeImage()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = PeerProcess.freePort()
        let peer = try PeerProcess("qemu-nbd", ["-t", "-r", "-f", "raw", "-b", "127.0.0.1", "-p", String(port), image])
        try peer.waitForPort(port)
        let client = try ClientHarness(NbdClientOptions(server: .inet(host: "127.0.0.1", port: String(port))))
        defer { client.shutdown() }
        #expect(try client.onLoop { $0.isReadOnly })
        #expect(try client.read(4096, 4096) == ExportFixture.pattern(count: 8192, seed: 7).suffix(4096))
        let denied = try client.result { driver, done in driver.write(at: 0, from: TestBuffer(count: 512).vector, completion: done) }
        #expect(throws: BlockError("Block node is read-only", errno: EPERM)) { try denied.get() }
    }

    @Test func againstNbdkitMemory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nbdk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("k.sock").path
        let peer = try PeerProcess("nbdkit", ["-f", "-U", socket, "memory", "64M"])
        try peer.waitForSocket(socket)
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: socket)))
        defer { client.shutdown() }
        #expect(try client.read(0, 4096).allSatisfy { $0 == 0 })
        try roundTrips(client, original: nil)
    }

    /// The client runs on a loop of its own: its blocking handshake would starve a server on the same loop.
    @Test func againstTheInProcessServer() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: fixture.socketPath), export: "exp"))
        defer { client.shutdown() }
        try roundTrips(client, original: ExportFixture.expectedImage())
        try client.onLoop { $0.close() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.imagePath))[(8 << 20) + 65536..<(9 << 20)]
            == ExportFixture.pattern(count: 40 << 20, seed: 42)[65536..<(1 << 20)])
    }

    @Test func syncRoundTripsForFormatDrivers() throws {
        let (directory, image) = try makeImage()
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("q.sock").path
        let peer = try PeerProcess("qemu-nbd", ["-t", "-f", "raw", "-k", socket, image])
        try peer.waitForSocket(socket)
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: socket)))
        defer { client.shutdown() }
        let bytes = try client.onLoop { driver -> [UInt8] in
            try driver.writeSync([1, 2, 3, 4, 5], at: 1000)
            try driver.flushSync()
            try driver.truncateSync(to: Int64(Self.size))
            return try driver.readSync(at: 998, count: 9)
        }
        let original = [UInt8](ExportFixture.pattern(count: 1008, seed: 7))
        #expect(bytes == [original[998], original[999], 1, 2, 3, 4, 5, original[1005], original[1006]])
        #expect(throws: BlockError("Cannot grow NBD nodes", errno: EINVAL)) { try client.onLoop { try $0.truncateSync(to: 1 << 30) } }
    }

    @Test func connectErrorsUseQEMUsWords() throws {
        let (directory, image) = try makeImage()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("none.sock").path
        #expect(throws: BlockError("Failed to connect to '\(missing)': No such file or directory", errno: ENOENT)) {
            try ClientHarness(NbdClientOptions(server: .unix(path: missing))).shutdown()
        }
        let socket = directory.appendingPathComponent("q.sock").path
        let peer = try PeerProcess("qemu-nbd", ["-t", "-f", "raw", "-k", socket, "-x", "exp", image])
        try peer.waitForSocket(socket)
        #expect(throws: BlockError("Requested export not available", errno: EINVAL)) {
            try ClientHarness(NbdClientOptions(server: .unix(path: socket), export: "other")).shutdown()
        }
    }

    @Test func requestsFailWhenTheServerGoesAway() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let client = try ClientHarness(NbdClientOptions(server: .unix(path: fixture.socketPath), export: "exp"))
        defer { client.shutdown() }
        #expect(try client.read(0, 512).count == 512)
        try fixture.loop.sync { fixture.server.stop() }
        #expect(try waitFor { try client.onLoop { !$0.isConnected } })
        #expect(throws: BlockError("Input/output error", errno: EIO)) { try client.read(0, 512) }
    }
}
