import Block
import Foundation
import Glibc
import Testing

/// The qcow2 driver under heavier use: refcount table growth, other refcount widths, internal
/// snapshots, version 2 images, preallocated images, and a random workload against a model.
@Suite struct Qcow2StressTests {
    typealias F = Qcow2Fixture

    /// Small clusters and wide refcounts make the refcount table outgrow its first cluster.
    @Test(arguments: [(512, 16), (512, 64), (4096, 1), (1024, 2)])
    func sequentialFillGrowsRefcountStructures(clusterSize: Int, refcountBits: Int) throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=\(clusterSize),refcount_bits=\(refcountBits)",
                   f.path("a.qcow2"), "24M")
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0, 24 << 20)
        for chunk in 0..<12 {
            let bytes = F.numbered(1 << 20, seed: chunk)
            try f.write(driver, bytes, at: Int64(chunk) << 20)
            expected.replaceSubrange(chunk << 20..<(chunk + 1) << 20, with: bytes)
        }
        for (offset, seed) in [(20 << 20, 1), (5 << 20 + 512, 2), (23 << 20, 3)] {
            try f.write(driver, F.numbered(8192, seed: seed), at: Int64(offset))
            expected.replaceSubrange(offset..<offset + 8192, with: F.numbered(8192, seed: seed))
        }
        try f.flush(driver)
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    @Test func writesIntoClustersSharedWithASnapshotCopyThem() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("a.qcow2"), "1M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", f.path("a.qcow2"))
        try f.tool("qemu-img", "snapshot", "-c", "s1", f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0x11, 1 << 20)
        for (offset, length, seed) in [(8192, 4096, 1), (131_072, 65536, 2), (600 << 10, 100 << 10, 3)] {
            try f.write(driver, F.numbered(length, seed: seed), at: Int64(offset))
            expected.replaceSubrange(offset..<offset + length, with: F.numbered(length, seed: seed))
        }
        try f.complete { driver.writeZeroes(at: 256 << 10, length: 64 << 10, mayUnmap: true, completion: $0) }
        try f.complete { driver.discard(at: 384 << 10, length: 64 << 10, completion: $0) }
        expected.replaceSubrange(256 << 10..<320 << 10, with: F.pattern(0, 64 << 10))
        expected.replaceSubrange(384 << 10..<448 << 10, with: F.pattern(0, 64 << 10))
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
        try f.tool("qemu-img", "convert", "-l", "snapshot.name=s1", "-f", "qcow2", "-O", "raw", f.path("a.qcow2"), f.path("s1.raw"))
        #expect(try f.fileBytes("s1.raw") == F.pattern(0x11, 1 << 20))
    }

    @Test func version2ImagesTakeWritesZeroesAndDiscards() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", f.path("a.qcow2"), "1M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 512k", f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0x33, 512 << 10) + F.pattern(0, 512 << 10)
        try f.write(driver, F.numbered(12288, seed: 1), at: 600 << 10)
        expected.replaceSubrange(600 << 10..<(600 << 10) + 12288, with: F.numbered(12288, seed: 1))
        try f.complete { driver.writeZeroes(at: 64 << 10, length: 100 << 10, mayUnmap: true, completion: $0) }
        expected.replaceSubrange(64 << 10..<164 << 10, with: F.pattern(0, 100 << 10))
        try f.complete { driver.discard(at: 256 << 10, length: 64 << 10, completion: $0) }
        expected.replaceSubrange(256 << 10..<320 << 10, with: F.pattern(0, 64 << 10))
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
    }

    @Test(arguments: ["metadata", "full"])
    func preallocatedImagesAreWrittenInPlace(preallocation: String) throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "preallocation=\(preallocation)", f.path("a.qcow2"), "2M")
        let sizeBefore = try f.fileBytes("a.qcow2").count
        let driver = try f.qcow2("a.qcow2")
        var expected = F.pattern(0, 2 << 20)
        try f.write(driver, F.numbered(4096, seed: 1), at: 4096)
        try f.write(driver, F.numbered(200 << 10, seed: 2), at: 300 << 10)
        expected.replaceSubrange(4096..<8192, with: F.numbered(4096, seed: 1))
        expected.replaceSubrange(300 << 10..<500 << 10, with: F.numbered(200 << 10, seed: 2))
        try f.complete { driver.writeZeroes(at: 320 << 10, length: 64 << 10, mayUnmap: false, completion: $0) }
        expected.replaceSubrange(320 << 10..<384 << 10, with: F.pattern(0, 64 << 10))
        try f.write(driver, F.numbered(512, seed: 3), at: 330 << 10)  // into the zeroed, still preallocated cluster
        expected.replaceSubrange(330 << 10..<(330 << 10) + 512, with: F.numbered(512, seed: 3))
        #expect(try f.read(driver, at: 0, count: expected.count) == expected)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", expected)
        #expect(try f.fileBytes("a.qcow2").count == sizeBefore)
    }

    /// Batches of concurrent writes, zeroes and discards (disjoint within a batch, often sharing
    /// clusters) over a backing file, checked against a model after every batch and at the end.
    @Test(arguments: [(4096, false), (65536, false), (512, true), (65536, true)])
    func randomWorkloadMatchesAModel(clusterSize: Int, tinyCaches: Bool) throws {
        let f = try F()
        let size = 8 << 20
        try f.makeRaw("base.raw", F.numbered(size, seed: 99))
        try f.tool("qemu-img", "convert", "-f", "raw", "-O", "qcow2", f.path("base.raw"), f.path("base.qcow2"))
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=\(clusterSize)",
                   "-b", f.path("base.qcow2"), "-F", "qcow2", f.path("a.qcow2"))
        let driver = try f.qcow2("a.qcow2", backing: try f.qcow2("base.qcow2", readOnly: true), tinyCaches: tinyCaches)
        var model = Model(bytes: F.numbered(size, seed: 99), clusterSize: clusterSize)
        var random = SplitMix(seed: UInt64(clusterSize))
        for batch in 0..<40 {
            try runBatch(f, driver, &model, &random, seed: batch)
            let probe = Int(random.next(below: UInt64(size - 65536))) / 512 * 512
            #expect(try f.read(driver, at: Int64(probe), count: 65536) == Array(model.bytes[probe..<probe + 65536]))
        }
        #expect(try f.read(driver, at: 0, count: size) == model.bytes)
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", model.bytes)
        let reopened = try f.qcow2("a.qcow2", backing: try f.qcow2("base.qcow2", readOnly: true), readOnly: true)
        #expect(try f.read(reopened, at: 0, count: size) == model.bytes)
    }

    /// Without any flush, what reached the disk (through cache evictions) is never corrupt:
    /// counts go out before the tables that point at new clusters. Leaks are allowed.
    @Test(arguments: [512, 65536])
    func unflushedMetadataOnDiskIsNeverCorrupt(clusterSize: Int) throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=\(clusterSize)", f.path("a.qcow2"), "8M")
        let driver = try f.qcow2("a.qcow2", tinyCaches: true)
        var model = Model(bytes: F.pattern(0, 8 << 20), clusterSize: clusterSize)
        var random = SplitMix(seed: 7)
        for batch in 0..<12 {
            try runBatch(f, driver, &model, &random, seed: batch, flushing: false)
            let (status, output) = try f.run("qemu-img", ["check", f.path("a.qcow2")])
            #expect(status == 0 || status == 3, "after batch \(batch): \(output)")
            #expect(!output.contains("ERROR"), "after batch \(batch): \(output)")
        }
        try f.flush(driver)
        try f.expectClean("a.qcow2")
        try f.expectContents("a.qcow2", model.bytes)
    }

    private func runBatch(_ f: F, _ driver: Qcow2Driver, _ model: inout Model, _ random: inout SplitMix, seed: Int,
                          flushing: Bool = true) throws {
        var taken: [Range<Int>] = []
        var pending = 0
        var failures: [BlockError] = []
        var buffers: [UnsafeMutableRawBufferPointer] = []
        let done: IoCompletion = { result in
            pending -= 1
            if case .failure(let error) = result { failures.append(error) }
        }
        for operation in 0..<8 {
            let start = Int(random.next(below: UInt64(model.bytes.count / 512))) * 512
            let length = min(Int(random.next(below: 96) + 1) * 2048, model.bytes.count - start)
            let range = start..<start + length
            guard !taken.contains(where: { $0.overlaps(range) }) else { continue }
            taken.append(range)
            pending += 1
            switch random.next(below: 10) {
            case 0..<6:
                let bytes = F.numbered(length, seed: seed * 8 + operation)
                buffers.append(F.buffer(bytes))
                model.write(bytes, at: start)
                driver.write(at: Int64(start), from: IoVector(buffers[buffers.count - 1]), completion: done)
            case 6..<8:
                let unmap = random.next(below: 2) == 0
                model.zero(range)
                driver.writeZeroes(at: Int64(start), length: Int64(length), mayUnmap: unmap, completion: done)
            default:
                model.discard(range)
                driver.discard(at: Int64(start), length: Int64(length), completion: done)
            }
        }
        try f.wait { pending == 0 }
        buffers.forEach { $0.deallocate() }
        #expect(failures.isEmpty, "\(failures)")
        if flushing && seed % 10 == 9 { try f.flush(driver) }
    }

    /// What the disk should read: writes and zeroes byte for byte, discards whole clusters only
    /// (reading zeroes, as the image has a backing file).
    private struct Model {
        var bytes: [UInt8]
        let clusterSize: Int

        mutating func write(_ data: [UInt8], at offset: Int) {
            bytes.replaceSubrange(offset..<offset + data.count, with: data)
        }

        mutating func zero(_ range: Range<Int>) {
            bytes.replaceSubrange(range, with: [UInt8](repeating: 0, count: range.count))
        }

        mutating func discard(_ range: Range<Int>) {
            let first = (range.lowerBound + clusterSize - 1) / clusterSize * clusterSize
            let last = range.upperBound == bytes.count ? bytes.count : range.upperBound / clusterSize * clusterSize
            if first < last { zero(first..<last) }
        }
    }

    /// A small seeded generator, so a failing run can be repeated.
    private struct SplitMix {
        var state: UInt64

        init(seed: UInt64) { state = seed }

        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }

        mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
    }
}
