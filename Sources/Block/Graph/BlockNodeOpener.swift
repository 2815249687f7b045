import Glibc

/// Opens the nodes `-blockdev` and `blockdev-add` describe (with nested children and a qcow2
/// backing chain from the image header) and links them into the graph with their edges.
public final class BlockNodeOpener {
    public let graph: BlockGraph
    private let engineFor: (FileOptions.AioMode) throws(BlockError) -> FileIoEngine
    /// Connects an NBD client (the NBD module provides it; Block cannot import it).
    public var nbdConnector: ((NbdClientOptions) throws(BlockError) -> BlockDriver)?
    /// BDRV_O_INACTIVE for every node opened now: an incoming migration's destination opens its
    /// images without taking write locks until the source hands them over (bds_tree_init, blockdev_init).
    public var opensInactive = false

    public init(graph: BlockGraph, engineFor: @escaping (FileOptions.AioMode) throws(BlockError) -> FileIoEngine) {
        self.graph = graph
        self.engineFor = engineFor
    }

    /// Opens a top-level node: it must be named unless `autoName` (a `-drive`, which names a
    /// BlockBackend instead). Nothing is left behind on failure.
    @discardableResult
    public func open(_ options: BlockdevOptions, autoName: Bool = false) throws(BlockError) -> BlockNode {
        guard options.nodeName != nil || autoName else { throw BlockError("'node-name' must be specified for the root node") }
        var created: [BlockNode] = []
        do {
            let node = try open(options, inherited: Inherited(readOnly: false, unmap: false), created: &created)
            node.isMonitorOwned = !autoName
            return node
        } catch {
            for node in created.reversed() { try? graph.remove(node) }
            throw error
        }
    }

    /// What children take from their parent's options unless they set it (bdrv_inherited_options).
    struct Inherited {
        var readOnly: Bool
        var unmap: Bool
    }

    private func open(_ options: BlockdevOptions, inherited: Inherited, created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        let node = try openNode(options, inherited: inherited, created: &created)
        node.unmapsDiscards = options.discardUnmap ?? inherited.unmap
        return node
    }

    private func openNode(_ options: BlockdevOptions, inherited: Inherited, created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        let name = options.nodeName ?? graph.makeAutoName()
        let readOnly = options.readOnly ?? inherited.readOnly
        let children = Inherited(readOnly: readOnly, unmap: options.discardUnmap ?? inherited.unmap)
        // bdrv_open_inherit opens a format's children before bdrv_open_common names the node, and
        // names a protocol node before opening it: a repeated name is found in that order.
        if !options.driver.hasChildren, graph.node(named: name) != nil {
            throw BlockError("Duplicate nodes with node-name='\(name)'", errno: EEXIST)
        }
        let node: BlockNode
        switch options.driver {
        case .file(var file):
            file.readOnly = readOnly
            let driver = try openFile(file, autoReadOnly: options.autoReadOnly)
            node = BlockNode(nodeName: name, isAutoNamed: options.nodeName == nil, driverName: "file", driver: driver,
                             readOnly: driver.isReadOnly, forceShare: options.forceShare, filename: file.filename)
        case .nullCo(let size, let readZeroes):
            node = BlockNode(nodeName: name, isAutoNamed: options.nodeName == nil, driverName: "null-co",
                             driver: NullDriver(size: size, readZeroes: readZeroes), readOnly: readOnly,
                             forceShare: options.forceShare, filename: "null-co://")
        case .raw(let fileReference, let offset, let size):
            let file = try child(fileReference, key: "file", inherited: children, created: &created)
            let node = try addOpening(name: name, options: options, driverName: "raw", readOnly: readOnly || file.readOnly,
                                      filename: file.filename, created: &created)
            let isFilter = offset == 0 && size == nil
            let edge = try graph.attachChild(file, to: node, name: "file", role: isFilter ? .root : [.data, .primary])
            node.driver = try RawDriver(file: edge, offset: offset, size: size)
            return node
        case .nbd(let nbd):
            guard let nbdConnector else { throw BlockError("Parameter 'driver' does not accept value 'nbd'") }
            let driver = try nbdConnector(nbd)
            let filename = switch nbd.server {
            case .unix(let path): "nbd+unix:///\(nbd.export)?socket=\(path)"
            case .inet(let host, let port): "nbd://\(host):\(port)/\(nbd.export)"
            }
            node = BlockNode(nodeName: name, isAutoNamed: options.nodeName == nil, driverName: "nbd", driver: driver,
                             readOnly: readOnly || driver.isReadOnly, forceShare: options.forceShare, filename: filename)
        case .blkdebug(let blkdebug):
            return try openBlkdebug(name: name, options: options, blkdebug, inherited: children, created: &created)
        case .qcow2(let fileReference, let backingReference):
            return try openQcow2(name: name, options: options, file: fileReference, backing: backingReference,
                                 inherited: children, created: &created)
        }
        node.inactive = opensInactive
        try graph.add(node)
        created.append(node)
        return node
    }

    /// `auto-read-only=on` falls back to read-only when the file cannot be opened for writing.
    private func openFile(_ file: FileOptions, autoReadOnly: Bool) throws(BlockError) -> FileDriver {
        do {
            return try FileDriver(options: file, engine: try engineFor(file.aio))
        } catch where autoReadOnly && !file.readOnly && (error.errno == EACCES || error.errno == EROFS || error.errno == EPERM) {
            var readOnly = file
            readOnly.readOnly = true
            return try FileDriver(options: readOnly, engine: try engineFor(file.aio))
        }
    }

    /// Resolves a child reference: an existing node, or a new one opened from nested options.
    func child(_ reference: BlockdevOptions.Reference, key: String, inherited: Inherited, created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        switch reference {
        case .node(let name):
            guard let node = graph.node(named: name) else {
                throw BlockError("Cannot find device='\(name)' nor node-name='\(name)'", errno: ENOENT)
            }
            return node
        case .options(let options):
            return try open(options, inherited: inherited, created: &created)
        case .none:
            throw BlockError("Parameter '\(key)' is missing")
        }
    }

    /// A node whose driver opens after its children are attached (QEMU's bdrv_open_driver runs
    /// on an allocated BlockDriverState and opens children through it).
    func addOpening(name: String, options: BlockdevOptions, driverName: String, readOnly: Bool, filename: String,
                    created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        let node = BlockNode(nodeName: name, isAutoNamed: options.nodeName == nil, driverName: driverName,
                             driver: UnopenedDriver(), readOnly: readOnly, forceShare: options.forceShare, filename: filename)
        node.inactive = opensInactive
        try graph.add(node)
        created.append(node)
        return node
    }
}
