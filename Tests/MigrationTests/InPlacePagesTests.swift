import Glibc
import Testing
import KVM
@testable import Migration

/// RAM that takes pages in place, as the destination's guest RAM does: the decoder reads data
/// straight into `bytes`.
final class InPlaceRam: RamSink {
    let pageCount: Int
    let bytes: UnsafeMutableRawBufferPointer
    var zeroed: [Int] = []
    init(pageCount: Int) {
        self.pageCount = pageCount
        bytes = .allocate(byteCount: pageCount * 4096, alignment: 4096)
        bytes.initializeMemory(as: UInt8.self, repeating: 0xEE)
    }
    deinit { bytes.deallocate() }
    var receivesInPlace: Bool { true }
    func pageBuffer(_ index: Int) throws(StreamError) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[index * 4096..<(index + 1) * 4096])
    }
    func writePage(_ index: Int, from source: UnsafeRawBufferPointer) throws(StreamError) {
        UnsafeMutableRawBufferPointer(rebasing: bytes[index * 4096..<(index + 1) * 4096]).copyMemory(from: source)
    }
    func zeroPage(_ index: Int) throws(StreamError) {
        zeroed.append(index)
        try writePage(index, from: ZeroPage.page)
    }
    func page(_ index: Int) -> [UInt8] { Array(bytes[index * 4096..<(index + 1) * 4096]) }
}

@Suite struct InPlacePagesTests {
    static let machine = StreamCodecTests.machine

    static func load(_ bytes: [UInt8]) throws(StreamError) -> (LoadedStream, InPlaceRam) {
        let ram = InPlaceRam(pageCount: machine.pageCount)
        var decoder = StreamDecoder(BytesInput(bytes))
        return (try StreamLoader.load(&decoder, into: ram, expecting: machine), ram)
    }

    @Test func pagesAreReadStraightIntoRamAndZeroPagesMarked() throws {
        let (loaded, ram) = try Self.load(StreamCodecTests.stream())
        #expect(ram.page(0) == StreamCodecTests.page(0))
        #expect(ram.page(2) == StreamCodecTests.page(2))
        #expect(ram.zeroed == [1, 3])
        #expect(ram.page(5) == [UInt8](repeating: 0xEE, count: 4096))
        #expect(loaded.pages == 4 && loaded.zeroPages == 2 && loaded.iterations == 1)
        #expect(loaded.devices.map(\.id) == Self.machine.sections)
    }

    /// The data lands before the checksum is known; a flipped data byte still refuses the
    /// stream naming the section and the record's offset.
    @Test func aFlippedDataByteIsRefusedAfterLandingInPlace() {
        var stream = StreamCodecTests.stream()
        let ramOffset = 16 + MigrationStream.recordOverhead + "machine".utf8.count + Self.machine.encoded().count
        let dataStart = ramOffset + 2 + "ram".utf8.count + 12 + MigrationStream.ramTableHeader + 4 * MigrationStream.pageEntryHeader
        stream[dataStart + 4096 + 9] ^= 0x01
        #expect(throws: StreamError.self) { try Self.load(stream) }
        do {
            _ = try Self.load(stream)
        } catch {
            #expect(error.description.contains("section 'ram' (instance 0) at offset \(ramOffset): checksum mismatch"), "\(error)")
        }
    }

    @Test func aStreamCutInsidePageDataIsTruncated() {
        let stream = StreamCodecTests.stream()
        let ramOffset = 16 + MigrationStream.recordOverhead + "machine".utf8.count + Self.machine.encoded().count
        let dataStart = ramOffset + 2 + "ram".utf8.count + 12 + MigrationStream.ramTableHeader + 4 * MigrationStream.pageEntryHeader
        for cut in [ramOffset + 20, dataStart - 1, dataStart + 100, dataStart + 8192, dataStart + 8193] {
            do {
                _ = try Self.load(Array(stream.prefix(cut)))
                Issue.record("loaded a stream cut at \(cut)")
            } catch {
                #expect(error.description.contains("section 'ram' (instance 0) at offset \(ramOffset): truncated"), "\(error)")
            }
        }
    }

    @Test func aPageTwiceInOneRecordIsRefused() {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
        encoder.open(.ram, name: "ram")
        encoder.page(3) { $0.copyBytes(from: StreamCodecTests.page(1)) }
        encoder.zeroPage(3)
        encoder.close()
        for inPlace in [false, true] {
            do {
                if inPlace { _ = try Self.load(encoder.buffer.array) } else { _ = try StreamCodecTests.load(encoder.buffer.array) }
                Issue.record("accepted page 3 twice")
            } catch {
                #expect(error.description.contains("page 3 comes twice in one record"), "\(error)")
            }
        }
    }

    @Test func aPayloadLongerThanItsTableIsRefused() {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
        // One zero entry and 7 stray bytes, with a good checksum.
        encoder.record(.ram, name: "ram", payload: [0, 0, 0, 1, 0, 0, 0, 2, 0] + [UInt8](repeating: 9, count: 7))
        for inPlace in [false, true] {
            do {
                if inPlace { _ = try Self.load(encoder.buffer.array) } else { _ = try StreamCodecTests.load(encoder.buffer.array) }
                Issue.record("accepted stray bytes")
            } catch {
                #expect(error.description.contains("a payload of 16 bytes for 1 page entries (0 with data) of 9 bytes"), "\(error)")
            }
        }
    }

    /// The sender's stop-and-copy pages go out from where they are (writev segments), and the
    /// stream is the same as with copies.
    @Test func pagesSentInPlaceMakeTheSameStreamAsCopies() throws {
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * 4096, alignment: 4096)
        defer { source.deallocate() }
        source.copyBytes(from: StreamCodecTests.page(4) + StreamCodecTests.page(9))
        func stream(inPlace: Bool) -> [UInt8] {
            var encoder = StreamEncoder()
            encoder.header()
            encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
            encoder.open(.ram, name: "ram")
            for (slot, index) in [6, 2].enumerated() {
                let page = UnsafeRawBufferPointer(rebasing: source[slot * 4096..<(slot + 1) * 4096])
                if inPlace { encoder.page(UInt32(index), inPlace: page) } else { encoder.page(UInt32(index)) { $0.copyMemory(from: page) } }
            }
            encoder.zeroPage(7)
            encoder.close()
            encoder.record(.globalState, name: "globalstate", payload: [7] + Array("running".utf8))
            encoder.record(.end, name: "end")
            #expect(encoder.buffer.streamCount == encoder.buffer.array.count)
            return encoder.buffer.array
        }
        let copied = stream(inPlace: false)
        #expect(stream(inPlace: true) == copied)
        let (loaded, ram) = try Self.load(copied)
        #expect(ram.page(6) == StreamCodecTests.page(4) && ram.page(2) == StreamCodecTests.page(9))
        #expect(loaded.pages == 3 && loaded.zeroPages == 1)
    }

    @Test func randomDamageNeverTrapsInPlace() {
        let stream = StreamCodecTests.stream()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<2000 {
            var damaged = stream
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if round % 3 == 0 { damaged = Array(damaged.prefix(Int.random(in: 0...damaged.count, using: &generator))) }
            if damaged == stream { continue }
            #expect(throws: StreamError.self, "round \(round)") { try Self.load(damaged) }
        }
    }
}

/// The sender's pending set: every page once, a sync adds only new ones, the cursor goes on.
@Suite struct PendingPagesTests {
    @Test func theBulkPassTakesEveryPageOnceInOrder() {
        var pending = PendingPages(pageCount: 130, all: true)
        #expect(pending.count == 130)
        var taken: [Int] = []
        while !pending.isEmpty { taken += pending.take(upTo: 50) }
        #expect(taken == Array(0..<130))
        #expect(pending.take(upTo: 10).isEmpty)
    }

    @Test func aSyncInMidPassAddsOnlyNewPagesAndTheCursorWrapsAround() {
        var pending = PendingPages(pageCount: 200, all: true)
        #expect(pending.take(upTo: 100) == Array(0..<100))
        var dirty = DirtyPageBitmap(pageCount: 200)
        for page in [3, 150, 199] { dirty.mark(page) }
        #expect(pending.insert(dirty) == 1)  // 150 and 199 were still pending
        #expect(pending.count == 101)
        let rest = pending.take(upTo: 1000)
        #expect(rest == Array(100..<200) + [3])
        #expect(pending.isEmpty && pending.bytes == 0)
    }

    @Test func takeAllIsAscendingFromAnyCursor() {
        var pending = PendingPages(pageCount: 70, all: false)
        var dirty = DirtyPageBitmap(pageCount: 70)
        for page in [69, 1, 64, 30] { dirty.mark(page) }
        pending.insert(dirty)
        #expect(pending.take(upTo: 1) == [1])
        pending.insert(dirty)
        #expect(pending.takeAll() == [1, 30, 64, 69])
    }
}
