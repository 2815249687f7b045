import Block
import Foundation
@testable import NBD

/// An NbdServer on an EventLoop exporting a 64 MiB file node ("exp", writable), with data in
/// [0, 16M) and [32M, 64M) and a hole between.
final class ExportFixture {
    static let size = 64 << 20
    static let holeStart = 16 << 20
    static let holeEnd = 32 << 20

    let loop: EventLoop
    let directory: URL
    let imagePath: String
    let socketPath: String
    private let aio: AioContext
    private let graph = BlockGraph()
    private var node: BlockNode!
    private var backends: [BlockBackend] = []
    private(set) var server: NbdServer!
    /// Names of exports whose deletion the server reported.
    private(set) var deleted: [String] = []

    /// `image`: export this existing file instead of a fresh pattern image.
    init(inet: Bool = false, maxConnections: Int = 0, image: String? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nbd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        imagePath = image ?? directory.appendingPathComponent("disk.raw").path
        socketPath = directory.appendingPathComponent("nbd.sock").path
        if image == nil { try Self.writeImage(imagePath) }
        loop = try EventLoop.started()
        aio = try AioContext()
        try loop.attach(aio)
        let address: SocketAddress = inet ? .inet(host: "127.0.0.1", port: "0") : .unix(path: socketPath)
        try loop.sync { try self.start(address, maxConnections: maxConnections) }
    }

    private func start(_ address: SocketAddress, maxConnections: Int) throws {
        let driver = try FileDriver(options: FileOptions(filename: imagePath), engine: aio)
        node = BlockNode(nodeName: "disk", driverName: "file", driver: driver, readOnly: false)
        try graph.add(node)
        server = try NbdServer(address: address, watcher: loop, maxConnections: maxConnections)
        server.onExportDeleted = { [unowned self] in self.deleted.append($0.name) }
        try addExportOnLoop(name: "exp", writable: true, description: nil)
    }

    /// Another export of the same node (QEMU's blk_exp_add permissions), with `bitmaps`.
    func addExport(name: String, writable: Bool, description: String? = nil, bitmaps: [NbdExportBitmap] = []) throws {
        try loop.sync { try self.addExportOnLoop(name: name, writable: writable, description: description, bitmaps: bitmaps) }
    }

    private func addExportOnLoop(name: String, writable: Bool, description: String?, bitmaps: [NbdExportBitmap] = []) throws {
        let backend = BlockBackend(graph: graph, perm: writable ? [.consistentRead, .write] : [.consistentRead], shared: .all)
        try backend.insert(node)
        backends.append(backend)
        try server.addExport(NbdExport(name: name, backend: backend, writable: writable, description: description), bitmaps: bitmaps)
    }

    /// block-dirty-bitmap-add on the exported node ("disk").
    func addBitmap(_ name: String, granularity: Int64 = 65536, disabled: Bool = false) throws {
        try loop.sync { try self.graph.addDirtyBitmap(node: "disk", name: name, granularity: granularity, persistent: false, disabled: disabled) }
    }

    /// block-dirty-bitmap-disable / -remove on the exported node, as QMP would call them.
    func disableBitmap(_ name: String) throws {
        try loop.sync { try self.graph.setDirtyBitmapEnabled(node: "disk", name: name, false) }
    }

    func removeBitmap(_ name: String) throws {
        try loop.sync { try self.graph.removeDirtyBitmap(node: "disk", name: name) }
    }

    func removeExport(_ name: String, mode: NbdRemoveMode = .safe) throws {
        try loop.sync { try self.server.removeExport(name: name, mode: mode) }
    }

    /// Whether the node's bitmap `name` is busy (exported), read on the loop.
    func bitmapIsBusy(_ name: String) throws -> Bool {
        try loop.sync { self.node.dirtyBitmaps.first { $0.name == name }?.isBusy ?? false }
    }

    var port: Int {
        guard case .inet(_, let port) = server.address else { return 0 }
        return Int(port) ?? 0
    }

    func uri(_ name: String = "exp") -> String {
        port == 0 ? "nbd+unix:///\(name)?socket=\(socketPath)" : "nbd://127.0.0.1:\(port)/\(name)"
    }

    func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    func shutdown() {
        try? loop.sync {
            self.server.stop()
            self.server = nil
            self.backends.removeAll()
        }
        loop.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: data

    /// Deterministic bytes that differ in every 8-byte word.
    static func pattern(count: Int, seed: UInt64) -> Data {
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        var state = seed | 1
        for index in words.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            words[index] = state
        }
        return words.withUnsafeBytes { Data($0.prefix(count)) }
    }

    static func writeImage(_ path: String) throws {
        let data = pattern(count: size, seed: 7)
        var image = data
        image.replaceSubrange(holeStart..<holeEnd, with: Data())
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingAtPath: path).unwrap()
        defer { try? handle.close() }
        try handle.write(contentsOf: data.prefix(holeStart))
        try handle.seek(toOffset: UInt64(holeEnd))
        try handle.write(contentsOf: data.suffix(from: holeEnd))
    }

    /// What the image holds at the start: the pattern, with zeroes in the hole.
    static func expectedImage() -> Data {
        var data = pattern(count: size, seed: 7)
        data.replaceSubrange(holeStart..<holeEnd, with: Data(count: holeEnd - holeStart))
        return data
    }
}

extension Optional {
    func unwrap() throws -> Wrapped {
        guard let self else { throw TestFailure("unexpected nil") }
        return self
    }
}
