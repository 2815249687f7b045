import Block

/// The migration stream as hostile input: `data` is a whole stream, loaded into 16 pages of
/// memory as a destination with no devices and one 1 MiB disk `d0` (for dirty bitmaps) would
/// load it. Any input must be refused or loaded, never trap.
public enum MigrationStreamFuzzEntry {
    private final class ScratchRam: RamSink {
        var pages = [[UInt8]](repeating: [], count: 16)
        func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) { pages[index] = Array(bytes) }
    }

    public static func fuzz(_ data: [UInt8]) {
        let graph = BlockGraph()
        try? graph.add(BlockNode(nodeName: "d0", driverName: "null-co", driver: NullDriver(size: 1 << 20, readZeroes: true), readOnly: false))
        let bitmaps = BitmapLoader(graph: graph)
        var decoder = StreamDecoder(BytesInput(data))
        let loaded = try? StreamLoader.load(&decoder, into: ScratchRam(), bitmaps: bitmaps,
                                            expecting: MachineDescription(ramSize: 16 * 4096, sections: []))
        if loaded?.postcopy == true {
            bitmaps.beforeVmStart()
            try? StreamLoader.loadPostcopy(&decoder, bitmaps: bitmaps)
        }
        bitmaps.cancelUnfinished()
    }
}
