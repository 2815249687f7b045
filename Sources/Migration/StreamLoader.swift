/// The destination's reading of a whole stream (QEMU's qemu_loadvm_state): the machine
/// record first (checked against this VM), then pages, iterations, device sections, dirty
/// bitmap chunks and the global state in any order, each device section once, then `end` — or
/// `postcopy-run`, after which only dirty bitmap chunks and `end` may come (`loadPostcopy`).
/// Pages go to RAM and bitmap chunks to `bitmaps` as they come; device state is returned, to be
/// loaded on the loop (`Machine.loadState` checks the section set, versions and values).
public enum StreamLoader {
    /// `whenDeviceStateBegins` is called once, at the first device section (the source's VM has
    /// stopped: the switch-over is on).
    public static func load<Input: StreamInput>(_ decoder: inout StreamDecoder<Input>, into ram: RamSink,
                                                 bitmaps: BitmapSink? = nil, expecting mine: MachineDescription,
                                                 whenDeviceStateBegins: () -> Void = {}) throws(StreamError) -> LoadedStream {
        try decoder.readHeader()
        let first = try decoder.next()
        guard first.type == .machine else {
            throw first.error("the stream must start with the machine record, not a \(first.type) record")
        }
        let source = try MachineDescription.decode(first)
        try mine.check(source: source)
        var loaded = LoadedStream(source: source)
        var globalStateSeen = false
        while true {
            let record = try decoder.next(loadingPagesInto: ram, pageCount: mine.pageCount)
            switch record.type {
            case .machine:
                throw record.error("a second machine record")
            case .ram:
                loaded.pages += record.loadedPages
                loaded.zeroPages += record.loadedZeroPages
            case .ramEndOfIteration:
                guard record.payload.isEmpty else { throw record.error("an end-of-iteration record carries no payload") }
                loaded.iterations += 1
            case .device:
                let id = SectionID(name: record.name, instance: record.instance)
                guard !loaded.devices.contains(where: { $0.id == id }) else { throw record.error("the section came twice") }
                if loaded.devices.isEmpty { whenDeviceStateBegins() }
                loaded.devices.append(DeviceStateRecord(id: id, version: record.version, payload: Array(record.payload)))
            case .globalState:
                var reader = PayloadReader(record)
                loaded.sourceRunState = try reader.string("run state")
                try reader.expectEnd()
                globalStateSeen = true
            case .dirtyBitmap:
                try loadBitmapChunk(record, into: bitmaps)
            case .postcopyRun:
                guard record.payload.isEmpty else { throw record.error("a postcopy-run record carries no payload") }
                guard globalStateSeen else { throw record.error("postcopy started without the globalstate section") }
                loaded.postcopy = true
                return loaded
            case .end:
                guard globalStateSeen else { throw record.error("the stream ended without the globalstate section") }
                return loaded
            }
        }
    }

    /// The rest of a postcopy stream (postcopy_ram_listen_thread for bitmaps only): dirty bitmap
    /// chunks, then `end`.
    public static func loadPostcopy<Input: StreamInput>(_ decoder: inout StreamDecoder<Input>,
                                                         bitmaps: BitmapSink?) throws(StreamError) {
        while true {
            let record = try decoder.next()
            switch record.type {
            case .dirtyBitmap: try loadBitmapChunk(record, into: bitmaps)
            case .end: return
            default: throw record.error("a \(record.type) record after postcopy started (only dirty bitmaps may follow)")
            }
        }
    }

    private static func loadBitmapChunk(_ record: DecodedRecord, into bitmaps: BitmapSink?) throws(StreamError) {
        let chunk = try DirtyBitmapRecord.decode(record)
        guard let bitmaps else { throw record.error("this destination takes no dirty bitmaps") }
        try bitmaps.load(chunk, from: record)
    }
}
