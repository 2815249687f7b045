import Glibc

extension BlockNodeOpener {
    /// qcow2 over its `file` child; the backing chain comes from `backing` (a node, nested
    /// options, or null for none) or, when absent, from the image header, opened read-only.
    func openQcow2(name: String, options: BlockdevOptions, file fileReference: BlockdevOptions.Reference,
                   backing backingReference: BlockdevOptions.Reference?, inherited: Inherited,
                   created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        let readOnly = inherited.readOnly
        let file = try child(fileReference, key: "file", inherited: inherited, created: &created)
        // qcow2 reads and writes its metadata with blocking calls: its child must offer them (file, nbd).
        guard file.driver is SyncBlockIO else {
            throw BlockError("qcow2 cannot use node '\(file.nodeName)' (\(file.driverName)) as its image file", errno: EINVAL)
        }
        let writable = !(readOnly || file.readOnly)
        let node = try addOpening(name: name, options: options, driverName: "qcow2", readOnly: !writable,
                                  filename: file.filename, created: &created)
        let fileEdge = try graph.attachChild(file, to: node, name: "file", role: .image)
        let driver = try Qcow2Driver(file: fileEdge, readOnly: !writable)
        node.driver = driver
        // Opened for an incoming migration: nothing cached is trusted; activation reads it all again.
        if node.inactive { try driver.inactivate() }
        driver.onCorruption = { [weak graph, weak node] report in
            if let graph, let node { graph.onImageCorrupted?(node, report) }
        }
        let backingInherited = Inherited(readOnly: true, unmap: inherited.unmap)
        if let backing = try backingNode(for: driver, imagePath: file.filename, reference: backingReference,
                                         inherited: backingInherited, created: &created) {
            driver.setBacking(try graph.attachChild(backing, to: node, name: "backing", role: .cow))
        }
        return node
    }

    private func backingNode(for driver: Qcow2Driver, imagePath: String, reference: BlockdevOptions.Reference?,
                             inherited: Inherited, created: inout [BlockNode]) throws(BlockError) -> BlockNode? {
        switch reference {
        case .none?: return nil
        case .node?, .options?: return try child(reference!, key: "backing", inherited: inherited, created: &created)
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
                return try child(.options(chained), key: "backing", inherited: inherited, created: &created)
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
