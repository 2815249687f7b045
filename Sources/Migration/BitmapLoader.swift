import Block

/// The destination's dirty bitmaps while they come in (QEMU's DBMLoadState in
/// migration/block-dirty-bitmap.c): each is created disabled and busy at its start chunk, an
/// enabled one with a successor that records the guest's writes once the VM runs; its bits are
/// loaded; at its completion the successor is reclaimed. Owned by the graph's thread (the loop);
/// IncomingBitmaps brings the receiver thread's chunks there.
public final class BitmapLoader: BitmapSink {
    private struct Loading {
        let alias: String
        let node: BlockNode
        let bitmap: BdrvDirtyBitmap
        let enabled: Bool
        var migrated = false
    }

    private let graph: BlockGraph
    private var loading: [Loading] = []
    private var beforeVmStartHandled = false

    public init(graph: BlockGraph) { self.graph = graph }

    /// BitmapSink, for a caller already on the graph's thread.
    public func load(_ chunk: DirtyBitmapRecord, from record: DecodedRecord) throws(StreamError) {
        do { try apply(chunk) } catch { throw record.error(error.description) }
    }

    public func apply(_ chunk: DirtyBitmapRecord) throws(StreamError) {
        switch chunk {
        case .start(let alias, let name, let granularity, let flags): try start(alias, name, granularity, flags)
        case .bits(let alias, let name, let first, let count, let bytes):
            let index = try find(alias, name)
            let bitmap = loading[index].bitmap
            let loaded = first <= UInt64(Int.max) && count <= UInt64(Int.max) && bytes.withUnsafeBytes {
                bitmap.deserialize(firstBit: Int(first), count: Int(count), from: $0)
            }
            guard loaded else {
                throw StreamError("Migrated bitmap granularity doesn't match the destination bitmap '\(name)' granularity "
                                  + "(bits \(first)+\(count) of \(bitmap.bitCount))")
            }
        case .complete(let alias, let name):
            let index = try find(alias, name)
            graph.reclaimSuccessor(of: loading[index].bitmap, on: loading[index].node)
            loading[index].migrated = true
            if beforeVmStartHandled { loading.remove(at: index) }
        }
    }

    /// dirty_bitmap_load_start.
    private func start(_ alias: String, _ name: String, _ granularity: UInt32, _ flags: UInt8) throws(StreamError) {
        let node: BlockNode
        do { node = try graph.lookup(alias) } catch { throw StreamError(error.description) }
        if node.dirtyBitmaps.contains(where: { $0.name == name }) {
            throw StreamError("Bitmap with the same name ('\(name)') already exists on destination")
        }
        guard granularity >= 512, granularity.nonzeroBitCount == 1 else {
            throw StreamError("bitmap '\(name)': granularity \(granularity) is not a power of 2 of at least 512")
        }
        guard flags & ~DirtyBitmapRecord.knownFlags == 0 else {
            throw StreamError("Unknown flags in migrated dirty bitmap header: \(String(flags, radix: 16))")
        }
        guard flags & DirtyBitmapRecord.persistentFlag == 0 else {
            throw StreamError("bitmap '\(name)' is persistent, and svmm stores no bitmaps in images")
        }
        let bitmap = graph.createIncomingBitmap(on: node, name: name, granularity: Int64(granularity))
        let enabled = flags & DirtyBitmapRecord.enabledFlag != 0
        if enabled { graph.createSuccessor(of: bitmap, on: node) } else { bitmap.setBusy(true) }
        loading.append(Loading(alias: alias, node: node, bitmap: bitmap, enabled: enabled))
    }

    private func find(_ alias: String, _ name: String) throws(StreamError) -> Int {
        guard let index = loading.firstIndex(where: { $0.alias == alias && $0.bitmap.name == name && !$0.migrated }) else {
            throw StreamError("Error: unknown dirty bitmap '\(name)' for block device '\(alias)'")
        }
        return index
    }

    /// dirty_bitmap_mig_before_vm_start: a migrated bitmap that recorded on the source records
    /// here from now on; one still coming records through its successor.
    public func beforeVmStart() {
        for item in loading where item.enabled {
            if item.migrated { graph.enableMigratedBitmap(item.bitmap) } else { graph.enableSuccessor(of: item.bitmap) }
        }
        loading.removeAll { $0.migrated }
        beforeVmStartHandled = true
    }

    /// cancel_incoming_locked: the bitmaps that did not finish are dropped; names them.
    @discardableResult
    public func cancelUnfinished() -> [String] {
        let unfinished = loading.filter { !$0.migrated }
        for item in unfinished { graph.releaseIncomingBitmap(item.bitmap, on: item.node) }
        loading.removeAll()
        return unfinished.map { "\($0.alias)/\($0.bitmap.name)" }
    }
}
