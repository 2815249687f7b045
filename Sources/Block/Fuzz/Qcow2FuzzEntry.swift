/// qcow2's fuzz entry (`make fuzz`, target `qcow2`): the input is an image file. Opens it (header,
/// extensions, L1, refcount table, snapshot table), reads clusters across the disk, writes one
/// (allocation walks the refcounts) and flushes, as a guest's first requests would.
public enum Qcow2FuzzEntry {
    /// Never traps: a hostile image is a BlockError (QEMU's "Could not open ..." texts) at open,
    /// or a failed request later, never a crash.
    public static func fuzz(_ data: [UInt8]) {
        for readOnly in [true, false] { exercise(data, readOnly: readOnly) }
    }

    private static func exercise(_ data: [UInt8], readOnly: Bool) {
        let graph = BlockGraph()
        let file = FuzzImageFile(data)
        let fileNode = BlockNode(nodeName: "file", driverName: "file", driver: file, readOnly: readOnly)
        let node = BlockNode(nodeName: "fmt", driverName: "qcow2", driver: UnopenedDriver(), readOnly: readOnly)
        guard (try? graph.add(fileNode)) != nil, (try? graph.add(node)) != nil,
              let edge = try? graph.attachChild(fileNode, to: node, name: "file", role: .image) else { return }
        // As blockdev-del does: the driver goes first (a writable one writes its cached tables
        // back), then the edges, which otherwise keep node, driver and file alive in a cycle.
        defer {
            node.driver = UnopenedDriver()
            try? graph.remove(node)
            try? graph.remove(fileNode)
        }
        // Tiny caches: every table read goes through eviction too.
        guard let driver = try? Qcow2Driver(file: edge, readOnly: readOnly, cacheLimits: Qcow2CacheLimits(l2Bytes: 0, refcountBytes: 0)) else { return }
        node.driver = driver
        let length = driver.length
        let count = 4096
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        // The start, the middle, the last full block and one cluster in, where tables point first.
        let offsets = [0, length / 2, length - Int64(count), Int64(driver.clusterSize)]
            .filter { $0 >= 0 && $0 <= length - Int64(count) }
        for offset in offsets {
            driver.read(at: offset / 512 * 512, into: IoVector(buffer), completion: { _ in })
        }
        guard !readOnly, let first = offsets.first else { return }
        driver.write(at: first, from: IoVector(buffer), completion: { _ in })
        driver.writeZeroes(at: first, length: Int64(count), mayUnmap: true, completion: { _ in })
        driver.flush(completion: { _ in })
    }
}
