@testable import Block
import Foundation
import Glibc
import Testing

/// Images whose metadata lies: svmm refuses the write that would make things worse, marks the
/// image corrupt as QEMU's qcow2_signal_corruption does, reports it once, and never spins.
@Suite struct Qcow2CorruptionTests {
    typealias F = Qcow2Fixture

    @Test func aRefcountTableWithoutItsFirstBlockFailsTheFirstAllocationInsteadOfSpinning() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("a.qcow2"), "64M")
        let refcountTable = try field(f, "a.qcow2", at: 48)
        try poke(f, "a.qcow2", at: refcountTable, [UInt8](repeating: 0, count: 8))
        try expectWriteRefused(f, "a.qcow2", message: "Preventing invalid allocation of refcount block at offset 0")
    }

    @Test func aHeaderWithRefcountZeroNeverGetsAnL2TableWrittenOverIt() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("b.qcow2"), "64M")
        let firstBlock = try field(f, "b.qcow2", at: Int(try field(f, "b.qcow2", at: 48)))
        try poke(f, "b.qcow2", at: firstBlock, [0, 0])  // 16-bit refcount of cluster 0
        try expectWriteRefused(f, "b.qcow2", message: "Preventing invalid allocation of L2 table at offset 0")
    }

    @Test func aDataClusterMappedOntoTheL1TableIsNotWritten() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("c.qcow2"), "64M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", f.path("c.qcow2"))
        let l1 = try field(f, "c.qcow2", at: 40)
        let l2 = try field(f, "c.qcow2", at: Int(l1)) & Qcow2Layout.offsetMask
        try poke(f, "c.qcow2", at: l2, bigEndian(l1 | Qcow2Layout.copiedFlag))
        try expectWriteRefused(f, "c.qcow2", message: "Preventing invalid write on metadata (overlaps with active L1 table)",
                               offset: Int64(l1), size: 65536)
    }

    @Test func anL2TableOnTheRefcountTableIsNotWrittenBack() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("d.qcow2"), "64M")
        let l1 = try field(f, "d.qcow2", at: 40)
        let refcountTable = try field(f, "d.qcow2", at: 48)
        try poke(f, "d.qcow2", at: l1, bigEndian(refcountTable | Qcow2Layout.copiedFlag))
        let tableBefore = Array(try f.fileBytes("d.qcow2")[Int(refcountTable)..<Int(refcountTable) + 65536])
        var reports: [Qcow2CorruptionReport] = []
        do {
            let driver = try f.qcow2("d.qcow2")
            driver.metadata.onCorruption = { reports.append($0) }
            // The write lands in a new cluster; its L2 entry then may not reach the "L2 table".
            let failed = failure { try f.write(driver, F.pattern(0x22, 4096), at: 65536); try f.flush(driver) }
            #expect(failed?.errno == EIO)
        }
        #expect(reports.map(\.message) == ["Preventing invalid write on metadata (overlaps with refcount table)"])
        #expect(Array(try f.fileBytes("d.qcow2")[Int(refcountTable)..<Int(refcountTable) + 65536]) == tableBefore)
        #expect(try f.tool("qemu-img", "info", f.path("d.qcow2")).contains("corrupt: true"))
    }

    @Test func overlapChecksNameWhatAWriteWouldHit() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "qcow2", f.path("e.qcow2"), "64M")
        try f.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", f.path("e.qcow2"))
        let driver = try f.qcow2("e.qcow2", readOnly: true)
        let metadata = driver.metadata
        let l2 = Int64(metadata.l1[0] & Qcow2Layout.offsetMask)
        let data = Int64(try #require({ if case .data(let host, _) = try metadata.state(ofGuestCluster: 0) { host } else { nil } }()))
        #expect(metadata.overlap(offset: 100, size: 1)?.name == "qcow2_header")
        #expect(metadata.overlap(offset: Int64(metadata.header.l1TableOffset) + 4096, size: 512)?.name == "active L1 table")
        #expect(metadata.overlap(offset: Int64(metadata.header.refcountTableOffset), size: 8)?.name == "refcount table")
        #expect(metadata.overlap(offset: Int64(metadata.refcounts.table[0]), size: 65536)?.name == "refcount block")
        #expect(metadata.overlap(offset: l2, size: 65536)?.name == "active L2 table")
        #expect(metadata.overlap(offset: l2, size: 65536, ignoring: .activeL2) == nil)
        #expect(metadata.overlap(offset: data, size: 65536) == nil)
        #expect(metadata.overlap(offset: 1 << 40, size: .max) == nil)
    }

    // MARK: Helpers

    /// Opens the image, expects two writes to fail with EIO (the first finding the corruption,
    /// the second refused), one fatal report, the corrupt bit on disk and nothing else changed.
    private func expectWriteRefused(_ f: F, _ name: String, message: String, offset: Int64? = nil, size: Int64? = nil,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try f.fileBytes(name)
        let checkBefore = try f.run("qemu-img", ["check", f.path(name)]).output
        var reports: [Qcow2CorruptionReport] = []
        var errors: [BlockError?] = []
        do {
            let driver = try f.qcow2(name)
            driver.metadata.onCorruption = { reports.append($0) }
            errors.append(failure { try f.write(driver, F.pattern(0x55, 4096), at: 0) })
            errors.append(failure { try f.write(driver, F.pattern(0x56, 4096), at: 1 << 20) })
            errors.append(failure { try f.flush(driver) })
        }
        #expect(errors.map { $0?.errno } == [EIO, EIO, EIO], "\(errors)", sourceLocation: sourceLocation)
        #expect(reports == [Qcow2CorruptionReport(message: message, offset: offset, size: size, fatal: true)], sourceLocation: sourceLocation)
        var after = try f.fileBytes(name)
        #expect(after[79] & 0x02 != 0, "corrupt bit", sourceLocation: sourceLocation)
        after[79] &= ~0x02
        #expect(after == before, "only the corrupt bit changed", sourceLocation: sourceLocation)
        #expect(try f.tool("qemu-img", "info", f.path(name)).contains("corrupt: true"), sourceLocation: sourceLocation)
        #expect(try f.run("qemu-img", ["check", f.path(name)]).output == checkBefore, sourceLocation: sourceLocation)
    }

    private func field(_ f: F, _ name: String, at offset: Int) throws -> UInt64 {
        let bytes = try f.fileBytes(name)
        return bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    private func poke(_ f: F, _ name: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        var image = try f.fileBytes(name)
        image.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes)
        try Data(image).write(to: URL(fileURLWithPath: f.path(name)))
    }

    private func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }

    private func failure(_ body: () throws -> Void) -> BlockError? {
        do {
            try body()
            return nil
        } catch {
            return error as? BlockError ?? BlockError("\(error)", errno: 0)
        }
    }
}
