import Glibc

extension BlockNodeOpener {
    /// qcow2 over its `file` child; the backing chain comes from `backing` (a node, nested
    /// options, or null for none) or, when absent, from the image header, opened read-only.
    func openQcow2(name: String, options: BlockdevOptions, file fileReference: BlockdevOptions.Reference,
                   backing backingReference: BlockdevOptions.Reference?, readOnly: Bool,
                   created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        let file = try child(fileReference, key: "file", readOnly: readOnly, created: &created)
        // qcow2 reads and writes its metadata with blocking calls: its child must offer them (file, nbd).
        guard let fileDriver = file.driver as? (BlockDriver & SyncBlockIO) else {
            throw BlockError("qcow2 cannot use node '\(file.nodeName)' (\(file.driverName)) as its image file", errno: EINVAL)
        }
        let writable = !(readOnly || file.readOnly)
        let driver = try Qcow2Driver(file: fileDriver, backing: nil, readOnly: !writable)
        let node = BlockNode(nodeName: name, isAutoNamed: options.nodeName == nil, driverName: "qcow2", driver: driver,
                             readOnly: !writable, forceShare: options.forceShare, filename: file.filename)
        try add(node, created: &created)
        try graph.attachChild(file, to: node, name: "file", role: .image)
        if let backing = try backingNode(for: driver, imagePath: file.filename, reference: backingReference, created: &created) {
            try graph.attachChild(backing, to: node, name: "backing", role: .cow)
            driver.setBacking(backing.driver)
        }
        return node
    }

    private func backingNode(for driver: Qcow2Driver, imagePath: String, reference: BlockdevOptions.Reference?,
                             created: inout [BlockNode]) throws(BlockError) -> BlockNode? {
        switch reference {
        case .none?: return nil
        case .node?, .options?: return try child(reference!, key: "backing", readOnly: true, created: &created)
        case nil:
            guard let backingFile = driver.backingFileName, !backingFile.isEmpty else { return nil }
            let path = Self.resolve(backingFile, relativeTo: imagePath)
            var fileOptions = FileOptions(filename: path)
            fileOptions.readOnly = true
            let fileNode = BlockdevOptions(nodeName: nil, driver: .file(fileOptions))
            var format = driver.backingFormat ?? ""
            if format.isEmpty { format = try Self.probeFormat(path) }
            let chained: BlockdevOptions = switch format {
            case "qcow2": BlockdevOptions(nodeName: nil, driver: .qcow2(file: .options(fileNode), backing: nil))
            case "raw": BlockdevOptions(nodeName: nil, driver: .raw(file: .options(fileNode), offset: 0, size: nil))
            default: throw BlockError("Could not open backing file: Unknown driver '\(format)'", errno: EINVAL)
            }
            do {
                return try child(.options(chained), key: "backing", readOnly: true, created: &created)
            } catch {
                throw BlockError("Could not open backing file: \(error)", errno: error.errno)
            }
        }
    }

    /// A backing file name in the header is relative to the image that names it.
    static func resolve(_ backing: String, relativeTo image: String) -> String {
        if backing.hasPrefix("/") { return backing }
        guard let slash = image.lastIndex(of: "/") else { return backing }
        return String(image[...slash]) + backing
    }

    /// Format probing for headers without a backing format: qcow2 by its magic, raw otherwise.
    static func probeFormat(_ path: String) throws(BlockError) -> String {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlockError.posix("Could not open backing file: Could not open '\(path)'", errno: errno) }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = read(fd, &magic, 4)
        return count == 4 && magic == [0x51, 0x46, 0x49, 0xfb] ? "qcow2" : "raw"
    }
}
