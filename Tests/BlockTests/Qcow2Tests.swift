import Block
import Foundation
import Glibc
import Testing

/// The qcow2 driver against images made, changed and checked by QEMU 7.2's own tools.
@Suite struct Qcow2Tests {
    typealias F = Qcow2Fixture

    // MARK: Reading what QEMU wrote

    @Test func readsAnImageQemuImgCreated() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("a.qcow2"), "4M")
        let driver = try f.qcow2("a.qcow2", readOnly: true)
        #expect(driver.length == 4 << 20)
        #expect(driver.backingFileName == nil)
        #expect(try f.read(driver, at: 0, count: 256 << 10) == F.pattern(0, 256 << 10))
        #expect(try f.read(driver, at: (4 << 20) - 4096, count: 4096) == F.pattern(0, 4096))
    }

    @Test func readsDataQemuIoWrote() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("a.qcow2"), "4M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", "-c", "write -P 0xcd 100k 8k",
                   "-c", "write -z 192k 64k", f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2", readOnly: true)
        var expected = F.pattern(0, 320 << 10)
        expected.replaceSubrange(0..<65536, with: F.pattern(0xab, 65536))
        expected.replaceSubrange(102_400..<110_592, with: F.pattern(0xcd, 8192))
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        #expect(try f.read(driver, at: 102_400 - 512, count: 1024) == F.pattern(0, 512) + F.pattern(0xcd, 512))
    }

    @Test(arguments: [512, 4096, 65536, 2 << 20])
    func readsAnImageConvertedFromRaw(clusterSize: Int) throws {
        let f = try F()
        var raw = F.numbered(3 << 20)
        raw.replaceSubrange((1 << 20)..<(2 << 20) + 4096, with: F.pattern(0, (1 << 20) + 4096))
        try f.makeRaw("a.raw", raw)
        try f.tool("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(clusterSize)",
                   f.path("a.raw"), f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2", readOnly: true)
        #expect(driver.length == Int64(raw.count))
        #expect(try f.read(driver, at: 0, count: raw.count) == raw)
        #expect(try f.read(driver, at: 12_800, count: 8192) == Array(raw[12_800..<12_800 + 8192]))
    }

    // MARK: Writing

    @Test func writesPassCheckAndCompare() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("a.qcow2"), "4M")
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0, 4 << 20)
        let writes: [(offset: Int, bytes: [UInt8])] = [
            (0, F.numbered(65536, seed: 1)),                   // one whole cluster
            (65536 + 4096, F.numbered(8192, seed: 2)),         // inside a new cluster
            (3 * 65536 - 512, F.numbered(100 << 10, seed: 3)), // across clusters, not on their boundaries
            (4096 + 512, F.numbered(1024, seed: 4)),           // in place, in an allocated cluster
            ((4 << 20) - 1536, F.numbered(1536, seed: 5)),     // up to the end of the disk
        ]
        for (offset, bytes) in writes {
            try f.write(driver, bytes, at: Int64(offset))
            expected.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    /// Writes racing into one not-yet-allocated cluster: none may be overwritten by another's
    /// copy-on-write, and a read meanwhile sees the old contents around them.
    @Test(arguments: [false, true])
    func concurrentWritesIntoOneNewClusterAllLand(withBacking: Bool) throws {
        let f = try F()
        let backing = withBacking ? try makeFilledBase(f, byte: 0x5a, size: "1M") : nil
        let old: UInt8 = withBacking ? 0x5a : 0
        try createImage(f, "a.qcow2", size: "1M", backing: withBacking ? "base.qcow2" : nil)
        let driver = try f.qcow2("a.qcow2", backing: backing)
        var expected = F.pattern(old, 1 << 20)
        let cluster = 3 * 65536
        var pending = 0
        var failures: [BlockError] = []
        var buffers: [UnsafeMutableRawBufferPointer] = []
        for piece in 0..<8 {
            let offset = cluster + piece * 8192
            let bytes = F.numbered(4096, seed: piece + 10)
            expected.replaceSubrange(offset..<offset + 4096, with: bytes)
            buffers.append(F.buffer(bytes))
            pending += 1
            driver.write(at: Int64(offset), from: IoVector(buffers[piece])) { result in
                pending -= 1
                if case .failure(let error) = result { failures.append(error) }
            }
        }
        let during = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 4096)
        pending += 1
        driver.read(at: Int64(cluster), into: IoVector(during)) { _ in pending -= 1 }
        try f.wait { pending == 0 }
        #expect(failures.isEmpty)
        for piece in 0..<8 {
            #expect(Array(during[piece * 8192 + 4096..<(piece + 1) * 8192]) == F.pattern(old, 4096))
        }
        during.deallocate()
        buffers.forEach { $0.deallocate() }
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    // MARK: Backing chains

    @Test func readsAndWritesThroughAChainOfThree() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("base.qcow2"), "1M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x01 0 512k", f.path("base.qcow2"))
        try createImage(f, "mid.qcow2", size: nil, backing: "base.qcow2")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x02 64k 64k", "-c", "write -z 128k 64k",
                   "-c", "write -P 0x22 600k 4k", f.path("mid.qcow2"))
        try createImage(f, "top.qcow2", size: nil, backing: "mid.qcow2")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x03 0 4k", "-c", "write -z 64k 4k", f.path("top.qcow2"))
        var expected = F.pattern(0, 1 << 20)
        for (range, byte) in [(0..<4096, 3), (4096..<65536, 1), (69632..<131_072, 2), (196_608..<524_288, 1), (614_400..<618_496, 0x22)] {
            expected.replaceSubrange(range, with: F.pattern(UInt8(byte), range.count))
        }
        let baseBefore = try f.fileBytes("base.qcow2")
        let midBefore = try f.fileBytes("mid.qcow2")

        let base = try f.qcow2("base.qcow2", readOnly: true)
        let mid = try f.qcow2("mid.qcow2", backing: base, readOnly: true)
        let top = try f.qcow2("top.qcow2", backing: mid)
        #expect(top.backingFileName == f.path("mid.qcow2"))
        #expect(top.backingFormat == "qcow2")
        #expect(try f.read(top, at: 0, count: expected.count) == expected)

        let writes: [(offset: Int, bytes: [UInt8])] = [
            (65536 + 8192, F.numbered(512, seed: 1)),        // in place: top owns this cluster
            (131_072 + 4096, F.numbered(4096, seed: 2)),     // copy-on-write of mid's zero cluster
            (300 << 10, F.numbered(1024, seed: 3)),          // copy-on-write of base's data
            (448 << 10, F.numbered(65536, seed: 4)),         // a whole cluster
            (500 << 10, F.numbered(200 << 10, seed: 5)),     // across base data, mid data and nothing
        ]
        for (offset, bytes) in writes {
            try f.write(top, bytes, at: Int64(offset))
            expected.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
        #expect(try f.read(top, at: 0, count: expected.count) == expected)
        try f.flush(top)
        try f.expectClean("top.qcow2")
        try f.expectContents("top.qcow2", expected)
        #expect(try f.fileBytes("base.qcow2") == baseBefore)
        #expect(try f.fileBytes("mid.qcow2") == midBefore)
    }

    // MARK: Creating

    @Test func createMatchesQemuImgByteForByte() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("base.qcow2"), "64M")
        let cases: [(name: String, size: Int64, clusterSize: Int, backing: Bool, qemuArguments: [String])] = [
            ("plain", 1 << 30, 65536, false, ["1G"]),
            ("backed", 64 << 20, 65536, true, ["-b", f.path("base.qcow2"), "-F", "qcow2", "64M"]),
            ("small", 100 << 20, 512, false, ["-o", "cluster_size=512", "100M"]),
            ("small-backed", 64 << 20, 512, true, ["-o", "cluster_size=512", "-b", f.path("base.qcow2"), "-F", "qcow2", "64M"]),
        ]
        for c in cases {
            _ = FileManager.default.createFile(atPath: f.path("\(c.name).qcow2"), contents: nil)
            try Qcow2Driver.create(on: try f.file("\(c.name).qcow2"), size: c.size, clusterSize: c.clusterSize,
                                   backingFile: c.backing ? f.path("base.qcow2") : nil, backingFormat: c.backing ? "qcow2" : nil)
            try f.expectClean("\(c.name).qcow2")
            _ = try f.run("qemu-img", ["create", "-f", "qcow2"] + c.qemuArguments.dropLast() + [f.path("\(c.name).ref"), c.qemuArguments.last!])
            let ours = try f.fileBytes("\(c.name).qcow2")
            let theirs = try f.fileBytes("\(c.name).ref")
            #expect(Array(ours.prefix(theirs.count)) == theirs, "\(c.name)")
            #expect(ours.dropFirst(theirs.count).allSatisfy { $0 == 0 }, "\(c.name)")
        }
    }

    @Test func createdImageShowsInQemuImgInfoAndTakesWrites() throws {
        let f = try F()
        try makeFilledBase(f, byte: 0x42, size: "2M")
        _ = FileManager.default.createFile(atPath: f.path("a.qcow2"), contents: nil)
        try Qcow2Driver.create(on: try f.file("a.qcow2"), size: 2 << 20, backingFile: f.path("base.qcow2"), backingFormat: "qcow2")
        let info = try JSONSerialization.jsonObject(with: Data(try f.tool("qemu-img", "info", "--output=json", f.path("a.qcow2")).utf8)) as? [String: Any]
        #expect(info?["virtual-size"] as? Int == 2 << 20)
        #expect(info?["backing-filename"] as? String == f.path("base.qcow2"))
        #expect(info?["backing-filename-format"] as? String == "qcow2")
        #expect(info?["cluster-size"] as? Int == 65536)

        let base = try f.qcow2("base.qcow2", readOnly: true)
        let driver = try f.qcow2("a.qcow2", backing: base)
        #expect(driver.backingFileName == f.path("base.qcow2"))
        #expect(driver.backingFormat == "qcow2")
        var expected = F.pattern(0x42, 2 << 20)
        try f.write(driver, F.numbered(8192, seed: 7), at: 70_000 / 512 * 512)
        expected.replaceSubrange(70_000 / 512 * 512..<70_000 / 512 * 512 + 8192, with: F.numbered(8192, seed: 7))
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    // MARK: Zeroes and discards

    @Test(arguments: [false, true])
    func zeroedAndDiscardedRangesReadAsZeroes(withBacking: Bool) throws {
        let f = try F()
        let backing = withBacking ? try makeFilledBase(f, byte: 0x11, size: "2M") : nil
        try createImage(f, "a.qcow2", size: "2M", backing: withBacking ? "base.qcow2" : nil)
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x77 0 1M", f.path("a.qcow2"))
        var expected = F.pattern(0x77, 1 << 20) + F.pattern(withBacking ? 0x11 : 0, 1 << 20)
        let driver = try f.qcow2("a.qcow2", backing: backing)
        let k = 1024
        func zero(_ offset: Int, _ length: Int, unmap: Bool) throws {
            try f.complete { driver.writeZeroes(at: Int64(offset), length: Int64(length), mayUnmap: unmap, completion: $0) }
            expected.replaceSubrange(offset..<offset + length, with: F.pattern(0, length))
        }
        try zero(64 * k, 128 * k, unmap: true)            // whole clusters, freed
        try zero(256 * k, 64 * k, unmap: false)           // a whole cluster, kept preallocated
        try zero(330 * k, 10 * k, unmap: false)           // part of a cluster: real zeroes
        try zero(1024 * k + 64 * k, 64 * k, unmap: true)  // hides the backing file
        try f.complete { driver.discard(at: Int64(512 * k), length: Int64(128 * k), completion: $0) }
        expected.replaceSubrange(512 * k..<640 * k, with: F.pattern(0, 128 * k))
        try f.complete { driver.discard(at: Int64(700 * k), length: Int64(10 * k), completion: $0) }  // partial: ignored
        try f.complete { driver.discard(at: Int64(1216 * k), length: Int64(64 * k), completion: $0) }
        expected.replaceSubrange(1216 * k..<1280 * k, with: F.pattern(0, 64 * k))
        for (offset, seed) in [(256 * k + 4096, 1), (64 * k + 512, 2), (512 * k, 3), (1088 * k, 4)] {
            try f.write(driver, F.numbered(4096, seed: seed), at: Int64(offset))
            expected.replaceSubrange(offset..<offset + 4096, with: F.numbered(4096, seed: seed))
        }
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    // MARK: Refusals

    @Test func compressedClustersFailReadsNamingCompression() throws {
        let f = try F()
        try f.makeRaw("a.raw", F.numbered(1 << 20))
        try f.tool("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", f.path("a.raw"), f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2", readOnly: true)
        #expect(failure { _ = try f.read(driver, at: 0, count: 4096) }?.contains("compressed clusters are not supported") == true)
        let writable = try f.qcow2("a.qcow2")
        #expect(failure { try f.write(writable, F.pattern(1, 4096), at: 4096) }?.contains("compressed") == true)
    }

    @Test func encryptedImagesAreRefused() throws {
        let f = try F()
        // LUKS times its key derivation, which fails now and then on a busy machine
        // ("Unable to get accurate CPU usage"): try a few times.
        let arguments = ["create", "-f", "qcow2", "--object", "secret,id=s0,data=x",
                         "-o", "encrypt.format=luks,encrypt.key-secret=s0", f.path("e.qcow2"), "1M"]
        var created = try f.run("qemu-img", arguments)
        for _ in 0..<4 where created.status != 0 { created = try f.run("qemu-img", arguments) }
        try #require(created.status == 0, "\(created.output)")
        let message = failure { _ = try f.qcow2("e.qcow2", readOnly: true) }
        #expect(message?.hasPrefix("Could not open '\(f.path("e.qcow2"))': qcow2 encryption is not supported") == true, "\(message ?? "")")
    }

    @Test func otherFilesAreNotQcow2() throws {
        let f = try F()
        try f.makeRaw("a.raw", F.numbered(1 << 20))
        #expect(failure { _ = try f.qcow2("a.raw", readOnly: true) } == "Image is not in qcow2 format")
    }

    @Test func featuresSvmmLacksAreRefused() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "extended_l2=on", f.path("x.qcow2"), "1M")
        #expect(failure { _ = try f.qcow2("x.qcow2", readOnly: true) } == "Unsupported qcow2 feature(s): extended L2 entries")
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "data_file=\(f.path("d.raw"))", f.path("d.qcow2"), "1M")
        #expect(failure { _ = try f.qcow2("d.qcow2", readOnly: true) } == "Unsupported qcow2 feature(s): external data file")
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("u.qcow2"), "1M")
        try setIncompatibleBits(f, "u.qcow2", 0x20)
        #expect(failure { _ = try f.qcow2("u.qcow2", readOnly: true) } == "Unsupported qcow2 feature(s): Unknown incompatible feature: 20")
    }

    @Test func headerFieldsOutOfRangeAreRefused() throws {
        let f = try F()
        let cases: [(offset: Int, bytes: [UInt8], message: String)] = [
            (4, [0, 0, 0, 4], "Unsupported qcow2 version 4"),
            (20, [0, 0, 0, 22], "Unsupported cluster size: 2^22"),
            (36, [0, 0, 0, 0], "L1 table is too small"),
            (40, [0, 0, 0, 0, 0, 3, 0, 1], "Active L1 table offset invalid"),
            (56, [0, 0, 0, 0], "Image does not contain a reference count table"),
            (96, [0, 0, 0, 7], "Reference count entry width too large; may not exceed 64 bits"),
            (100, [0, 0, 0, 100], "qcow2 header too short"),
        ]
        for (number, c) in cases.enumerated() {
            try f.tool("qemu-img", "create", "-f", "qcow2", f.path("h\(number).qcow2"), "1G")
            var bytes = try f.fileBytes("h\(number).qcow2")
            bytes.replaceSubrange(c.offset..<c.offset + c.bytes.count, with: c.bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: f.path("h\(number).qcow2")))
            #expect(failure { _ = try f.qcow2("h\(number).qcow2", readOnly: true) } == c.message)
        }
    }

    @Test func corruptImagesOpenOnlyReadOnly() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("c.qcow2"), "1M")
        try setIncompatibleBits(f, "c.qcow2", 0x02)
        #expect(failure { _ = try f.qcow2("c.qcow2") } == "qcow2: Image is corrupt; cannot be opened read/write")
        #expect(try f.read(try f.qcow2("c.qcow2", readOnly: true), at: 0, count: 512) == F.pattern(0, 512))
    }

    // MARK: Migration hand-over

    @Test func activateSeesWhatAnotherProcessWrote() throws {
        let f = try F()
        try createImage(f, "a.qcow2", size: "1M", backing: nil)
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0, 1 << 20)
        try f.write(driver, F.pattern(0x11, 65536), at: 0)
        try f.write(driver, F.pattern(0x12, 4096), at: 128 << 10)
        try driver.inactivate()
        #expect(failure { try f.write(driver, F.pattern(1, 512), at: 0) } == "Block node is inactive")
        try f.expectClean("a.qcow2")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x99 0 64k", "-c", "write -P 0x98 512k 128k", f.path("a.qcow2"))
        try driver.activate()
        expected.replaceSubrange(0..<65536, with: F.pattern(0x99, 65536))
        expected.replaceSubrange(131_072..<135_168, with: F.pattern(0x12, 4096))
        expected.replaceSubrange(524_288..<655_360, with: F.pattern(0x98, 131_072))
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.write(driver, F.pattern(0x55, 65536), at: 768 << 10)
        expected.replaceSubrange(786_432..<851_968, with: F.pattern(0x55, 65536))
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    // MARK: Helpers

    /// `qemu-img create`, with an absolute backing path so QEMU and svmm resolve it alike.
    private func createImage(_ f: F, _ name: String, size: String?, backing: String?) throws {
        var arguments = ["create", "-f", "qcow2"]
        if let backing { arguments += ["-b", f.path(backing), "-F", "qcow2"] }
        arguments.append(f.path(name))
        if let size { arguments.append(size) }
        let (status, output) = try f.run("qemu-img", arguments)
        guard status == 0 else { throw F.Failure("qemu-img \(arguments): \(output)") }
    }

    /// base.qcow2 filled with `byte`, opened read-only as a backing node.
    @discardableResult
    private func makeFilledBase(_ f: F, byte: UInt8, size: String) throws -> Qcow2Driver {
        try createImage(f, "base.qcow2", size: size, backing: nil)
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P \(byte) 0 \(size)", f.path("base.qcow2"))
        return try f.qcow2("base.qcow2", readOnly: true)
    }

    /// Sets incompatible feature bits in the header (the low byte of the big-endian field at 72).
    private func setIncompatibleBits(_ f: F, _ name: String, _ bits: UInt8) throws {
        var bytes = try f.fileBytes(name)
        bytes[79] |= bits
        try Data(bytes).write(to: URL(fileURLWithPath: f.path(name)))
    }

    private func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }
}
