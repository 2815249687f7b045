@testable import Block
import Foundation
import Testing
@testable import Migration

/// Dirty bitmaps in the stream (the `dirty-bitmaps` capability): they round-trip onto the
/// destination's node of the same name, busy and not recording while they come in, and every
/// kind of bad input (truncated, unknown node or bitmap, a name already taken, a granularity or
/// size that does not fit, reserved flags, huge counts) is refused naming the section, never trapping.
@Suite struct DirtyBitmapStreamTests {
    static let machine = MachineDescription(ramSize: 16 * 4096, sections: [])  // as the fuzz entry's

    /// A graph with `d0` (1 MiB) as the destination has it.
    static func destination(size: Int64 = 1 << 20) -> (BlockGraph, BitmapLoader) {
        let graph = BlockGraph()
        try! graph.add(BlockNode(nodeName: "d0", driverName: "null-co", driver: NullDriver(size: size, readZeroes: true), readOnly: false))
        return (graph, BitmapLoader(graph: graph))
    }

    /// A stream with the given bitmap chunks before the device state (precopy), or after
    /// `postcopy-run` (postcopy), and `tail` more records' worth of raw bytes before `end`.
    static func stream(precopy: [DirtyBitmapRecord], postcopy: [DirtyBitmapRecord]? = nil) -> [UInt8] {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: machine.encoded())
        for chunk in precopy { chunk.encode(into: &encoder) }
        encoder.record(.globalState, name: "globalstate", payload: [7] + Array("running".utf8))
        if let postcopy {
            encoder.record(.postcopyRun, name: "postcopy-run")
            for chunk in postcopy { chunk.encode(into: &encoder) }
        }
        encoder.record(.end, name: "end")
        return encoder.buffer.array
    }

    static func load(_ bytes: [UInt8], into loader: BitmapLoader) throws(StreamError) -> LoadedStream {
        var decoder = StreamDecoder(BytesInput(bytes))
        let loaded = try StreamLoader.load(&decoder, into: MemoryRam(pageCount: 16), bitmaps: loader, expecting: machine)
        if loaded.postcopy {
            loader.beforeVmStart()
            try StreamLoader.loadPostcopy(&decoder, bitmaps: loader)
        }
        return loaded
    }

    static func refusal(_ bytes: [UInt8], size: Int64 = 1 << 20) -> String? {
        let (_, loader) = destination(size: size)
        do { _ = try load(bytes, into: loader) } catch { return error.description }
        return nil
    }

    static let start = DirtyBitmapRecord.start(node: "d0", bitmap: "bitmap0", granularity: 65536, flags: DirtyBitmapRecord.enabledFlag)
    /// 16 granules of 64 KiB: bits 1 and 9 set (offsets 64 KiB and 576 KiB).
    static let bits = DirtyBitmapRecord.bits(node: "d0", bitmap: "bitmap0", firstBit: 0, count: 16, bytes: [0x02, 0x02])
    static let complete = DirtyBitmapRecord.complete(node: "d0", bitmap: "bitmap0")

    @Test func aBitmapRoundTripsOntoTheNodeOfTheSameName() throws {
        let (graph, loader) = Self.destination()
        _ = try Self.load(Self.stream(precopy: [Self.start, Self.bits, Self.complete]), into: loader)
        loader.beforeVmStart()
        let (_, bitmap) = try graph.dirtyBitmap(node: "d0", name: "bitmap0")
        #expect(bitmap.granularity == 65536 && bitmap.count == 2 * 65536)
        #expect(bitmap.isDirty(at: 65536) && bitmap.isDirty(at: 9 * 65536) && !bitmap.isDirty(at: 0))
        #expect(bitmap.isRecording && !bitmap.isBusy)
        #expect(graph.node(named: "d0")!.dirtyBitmaps.count == 1)  // the successor is gone
    }

    @Test func aDisabledBitmapStaysDisabled() throws {
        let (graph, loader) = Self.destination()
        let start = DirtyBitmapRecord.start(node: "d0", bitmap: "bitmap0", granularity: 4096, flags: 0)
        _ = try Self.load(Self.stream(precopy: [start, Self.complete]), into: loader)
        loader.beforeVmStart()
        let (_, bitmap) = try graph.dirtyBitmap(node: "d0", name: "bitmap0")
        #expect(!bitmap.isRecording && !bitmap.isBusy && bitmap.granularity == 4096 && bitmap.count == 0)
    }

    @Test func whileItComesInItIsBusyAndNotRecordingAndAnAnonymousSuccessorWaits() throws {
        let (graph, loader) = Self.destination()
        try loader.apply(Self.start)
        let node = graph.node(named: "d0")!
        #expect(node.dirtyBitmaps.count == 2)
        let (_, bitmap) = try graph.dirtyBitmap(node: "d0", name: "bitmap0")
        #expect(bitmap.isBusy && !bitmap.isRecording)
        #expect(node.dirtyBitmaps[0].name.isEmpty && !node.dirtyBitmaps[0].isRecording)
        #expect(throws: BlockError.self) { try graph.clearDirtyBitmap(node: "d0", name: "bitmap0") }
    }

    @Test func postcopyBitsArriveAfterTheVmRunsAndWritesMeanwhileAreKept() throws {
        let (graph, loader) = Self.destination()
        try loader.apply(Self.start)
        loader.beforeVmStart()   // postcopy-run: the successor records
        let node = graph.node(named: "d0")!
        let successor = node.dirtyBitmaps[0]
        #expect(successor.isRecording)
        successor.set(offset: 3 * 65536, length: 1)   // a guest write during postcopy
        try loader.apply(Self.bits)
        try loader.apply(Self.complete)
        let (_, bitmap) = try graph.dirtyBitmap(node: "d0", name: "bitmap0")
        #expect(bitmap.count == 3 * 65536 && bitmap.isDirty(at: 3 * 65536) && bitmap.isRecording && !bitmap.isBusy)
        #expect(node.dirtyBitmaps.count == 1)
    }

    @Test func aPostcopyStreamStopsAtPostcopyRunAndTheBitsFollow() throws {
        let (graph, loader) = Self.destination()
        let loaded = try Self.load(Self.stream(precopy: [Self.start], postcopy: [Self.bits, Self.complete]), into: loader)
        #expect(loaded.postcopy)
        #expect(try graph.dirtyBitmap(node: "d0", name: "bitmap0").1.count == 2 * 65536)
    }

    @Test func onlyBitmapsMayFollowPostcopyRun() {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
        encoder.record(.globalState, name: "globalstate", payload: [7] + Array("running".utf8))
        encoder.record(.postcopyRun, name: "postcopy-run")
        encoder.record(.globalState, name: "globalstate", payload: [7] + Array("running".utf8))
        let message = Self.refusal(encoder.buffer.array) ?? ""
        #expect(message.contains("section 'globalstate'") && message.contains("after postcopy started"))
    }

    @Test func anUnfinishedBitmapIsDroppedOnCancel() throws {
        let (graph, loader) = Self.destination()
        try loader.apply(Self.start)
        #expect(loader.cancelUnfinished() == ["d0/bitmap0"])
        #expect(graph.node(named: "d0")!.dirtyBitmaps.isEmpty)
    }

    @Test func anUnknownNodeIsRefusedInQemusWords() {
        let start = DirtyBitmapRecord.start(node: "nosuch", bitmap: "b", granularity: 65536, flags: 0)
        let message = Self.refusal(Self.stream(precopy: [start])) ?? ""
        #expect(message.contains("section 'dirty-bitmap'"))
        #expect(message.hasSuffix("Cannot find device='nosuch' nor node-name='nosuch'"))
    }

    @Test func aBitmapThatExistsOnTheDestinationIsRefused() throws {
        let (graph, loader) = Self.destination()
        try graph.addDirtyBitmap(node: "d0", name: "bitmap0", granularity: nil, persistent: false, disabled: false)
        #expect(throws: StreamError.self) { _ = try Self.load(Self.stream(precopy: [Self.start]), into: loader) }
        do { _ = try Self.load(Self.stream(precopy: [Self.start]), into: loader) } catch {
            #expect(error.description.hasSuffix("Bitmap with the same name ('bitmap0') already exists on destination"))
        }
    }

    @Test func badGranularitiesAndFlagsAreRefused() {
        for granularity: UInt32 in [0, 1, 256, 511, 3000, 65537] {
            let start = DirtyBitmapRecord.start(node: "d0", bitmap: "b", granularity: granularity, flags: 0)
            #expect(Self.refusal(Self.stream(precopy: [start]))?.contains("granularity \(granularity) is not a power of 2") == true)
        }
        let reserved = DirtyBitmapRecord.start(node: "d0", bitmap: "b", granularity: 65536, flags: 0x9)
        #expect(Self.refusal(Self.stream(precopy: [reserved]))?.hasSuffix("Unknown flags in migrated dirty bitmap header: 9") == true)
        let persistent = DirtyBitmapRecord.start(node: "d0", bitmap: "b", granularity: 65536, flags: DirtyBitmapRecord.persistentFlag)
        #expect(Self.refusal(Self.stream(precopy: [persistent]))?.contains("persistent") == true)
    }

    @Test func bitsThatDoNotFitTheDestinationsBitmapAreRefused() {
        // The source's disk was larger (or its granularity finer): 32 bits for a 16-granule bitmap.
        let tooMany = DirtyBitmapRecord.bits(node: "d0", bitmap: "bitmap0", firstBit: 0, count: 32, bytes: [1, 2, 3, 4])
        #expect(Self.refusal(Self.stream(precopy: [Self.start, tooMany]))?.contains("doesn't match the destination bitmap 'bitmap0' granularity") == true)
        let far = DirtyBitmapRecord.bits(node: "d0", bitmap: "bitmap0", firstBit: UInt64.max - 3, count: 8, bytes: [0xff])
        #expect(Self.refusal(Self.stream(precopy: [Self.start, far]))?.contains("doesn't match") == true)
        let huge = DirtyBitmapRecord.bits(node: "d0", bitmap: "bitmap0", firstBit: 8, count: UInt64.max, bytes: [0xff])
        #expect(Self.refusal(Self.stream(precopy: [Self.start, huge]))?.contains("cannot hold") == true)
        let short = DirtyBitmapRecord.bits(node: "d0", bitmap: "bitmap0", firstBit: 0, count: 16, bytes: [1])
        #expect(Self.refusal(Self.stream(precopy: [Self.start, short]))?.contains("1 bytes of bits cannot hold 16 bits") == true)
    }

    @Test func bitsOrCompletionOfABitmapNeverStartedAreRefused() {
        #expect(Self.refusal(Self.stream(precopy: [Self.bits]))?.hasSuffix("Error: unknown dirty bitmap 'bitmap0' for block device 'd0'") == true)
        #expect(Self.refusal(Self.stream(precopy: [Self.start, Self.complete, Self.complete]))?.contains("unknown dirty bitmap") == true)
    }

    @Test func aTruncatedOrDamagedBitmapRecordIsRefusedAtEveryLength() {
        let stream = Self.stream(precopy: [Self.start, Self.bits, Self.complete])
        for length in 17..<stream.count - 1 {
            #expect(Self.refusal(Array(stream[..<length])) != nil, "length \(length)")
        }
        let firstBitmapRecord = 16 + MigrationStream.recordOverhead + "machine".utf8.count + Self.machine.encoded().count
        var damaged = stream
        damaged[firstBitmapRecord + 20] ^= 1
        #expect(Self.refusal(damaged)?.contains("section 'dirty-bitmap' (instance 0) at offset \(firstBitmapRecord): checksum mismatch") == true)
    }

    @Test func malformedPayloadsAreRefusedNamingTheSection() {
        func record(_ payload: [UInt8]) -> [UInt8] {
            var encoder = StreamEncoder()
            encoder.header()
            encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
            encoder.record(.dirtyBitmap, name: "dirty-bitmap", payload: payload)
            return encoder.buffer.array
        }
        let cases: [([UInt8], String)] = [
            ([], "payload ends inside the chunk kind"),
            ([9], "unknown dirty bitmap chunk kind 9"),
            ([1, 200, 0x64], "payload ends inside the node name"),
            ([1, 0, 0], "empty node or bitmap name"),
            ([1, 2, 0x64, 0x30, 1, 0x62, 0, 1], "payload ends inside the granularity"),
            ([3, 2, 0x64, 0x30, 1, 0x62, 7], "1 unexpected bytes after the payload"),
            ([1, 2, 0xff, 0xfe, 1, 0x62, 0, 1, 0, 0, 0], "the node name is not UTF-8"),
        ]
        for (payload, problem) in cases {
            let message = Self.refusal(record(payload)) ?? ""
            #expect(message.contains("section 'dirty-bitmap'") && message.contains(problem), "\(payload): \(message)")
        }
    }

    @Test func theSerializationRoundTripsAtOddSizes() {
        let graph = BlockGraph()
        let node = BlockNode(nodeName: "n", driverName: "null-co", driver: NullDriver(size: 1000 * 512 + 7, readZeroes: true), readOnly: false)
        try! graph.add(node)
        let source = graph.createIncomingBitmap(on: node, name: "a", granularity: 512)
        for bit in [0, 7, 8, 63, 64, 500, 1000] { source.setBit(bit, to: true) }
        let bytes = source.serialize(firstBit: 0, count: source.bitCount)!
        #expect(source.bitCount == 1001 && bytes.count == 126)
        let copy = graph.createIncomingBitmap(on: node, name: "b", granularity: 512)
        #expect(bytes.withUnsafeBytes { copy.deserialize(firstBit: 0, count: 1001, from: $0) })
        #expect(copy.count == source.count && copy.isDirty(at: 1000 * 512))
        #expect(source.serialize(firstBit: 1000, count: 2) == nil)
        #expect(bytes.withUnsafeBytes { !copy.deserialize(firstBit: 0, count: 1001, from: UnsafeRawBufferPointer(rebasing: $0.dropLast())) })
    }

    /// The fuzz corpus's seeds are real streams (so the fuzzer starts inside the bitmap records).
    @Test func theCorpusSeedsLoad() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz-corpus/migration-stream")
        for seed in ["dirty-bitmap-precopy", "dirty-bitmap-postcopy"] {
            let bytes = Array(try Data(contentsOf: folder.appendingPathComponent(seed)))
            let (graph, loader) = Self.destination()
            _ = try Self.load(bytes, into: loader)
            #expect(try graph.dirtyBitmap(node: "d0", name: "bitmap0").1.count == 2 * 65536, "\(seed)")
        }
        let huge = Array(try Data(contentsOf: folder.appendingPathComponent("dirty-bitmap-huge-count")))
        #expect(Self.refusal(huge)?.contains("cannot hold") == true)
    }
}
