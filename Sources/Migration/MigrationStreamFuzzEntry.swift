/// The migration stream as hostile input: `data` is a whole stream, loaded into 16 pages of
/// memory as a destination with no devices would load it. Any input must be refused or loaded,
/// never trap.
public enum MigrationStreamFuzzEntry {
    private final class ScratchRam: RamSink {
        var pages = [[UInt8]](repeating: [], count: 16)
        func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) { pages[index] = Array(bytes) }
    }

    public static func fuzz(_ data: [UInt8]) {
        var decoder = StreamDecoder(BytesInput(data))
        _ = try? StreamLoader.load(&decoder, into: ScratchRam(), expecting: MachineDescription(ramSize: 16 * 4096, sections: []))
    }
}
