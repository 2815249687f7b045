import Block
import Glibc

/// QEMU's built-in NBD server (blockdev-nbd.c, nbd/server.c): a listening socket on the event
/// loop, a set of named exports, and any number of clients. Everything runs on the loop thread.
public final class NbdServer {
    /// The address it listens on (an inet port 0 replaced by the chosen port).
    public let address: SocketAddress
    /// `max-connections`: 0 is unlimited; 1 also withholds CAN_MULTI_CONN (QEMU 7.2).
    public let maxConnections: Int
    public private(set) var exports: [NbdExport] = []
    /// Why clients were dropped (QEMU prints these on stderr).
    public var log: ((String) -> Void)?
    /// An export is gone: removed and no request of it still in flight (BLOCK_EXPORT_DELETED).
    public var onExportDeleted: ((NbdExport) -> Void)?
    private let watcher: FdWatcher
    private var listener: Int32
    private var connections: [ObjectIdentifier: NbdServerConnection] = [:]
    private var accepting = true
    let pool = BufferPool()

    /// Binds and listens on `address` (exactly the host given), on `watcher`'s loop.
    public init(address: SocketAddress, watcher: FdWatcher, maxConnections: Int = 0) throws(BlockError) {
        let (fd, bound): (Int32, SocketAddress)
        // Only the owner may connect to a unix socket (issue 16), as to the QMP one.
        do { (fd, bound) = try Socket.listen(address, permissions: 0o600) } catch { throw BlockError(error) }
        self.listener = fd
        self.address = bound
        self.watcher = watcher
        self.maxConnections = maxConnections
        do {
            try watcher.watch(fd, for: .readable, blockLayer: true) { [weak self] _ in self?.acceptClients() }
        } catch {
            close(fd)
            throw BlockError(error)
        }
    }

    /// Released (on the loop thread) without `stop()`: close the sockets, report nothing.
    deinit {
        guard isRunning else { return }
        closeListener()
        for connection in Array(connections.values) { connection.close(reason: "") }
    }

    public var isRunning: Bool { listener >= 0 }

    /// Exports clients can still reach.
    var activeExports: [NbdExport] { exports }

    public func export(named name: String) -> NbdExport? { exports.first { $0.name == name } }

    /// Clients that finished negotiation on the export.
    public func clientCount(exportName name: String) -> Int {
        connections.values.filter { $0.attachedExport?.name == name && !$0.isClosed }.count
    }

    public var connectionCount: Int { connections.count }

    /// nbd_export_create's checks, then the export is visible to clients.
    public func addExport(_ export: NbdExport, bitmaps: [NbdExportBitmap] = []) throws(BlockError) {
        guard isRunning else { throw BlockError("NBD server not running", errno: EINVAL) }
        if export.name.utf8.count > NbdProtocol.maxStringSize {
            throw BlockError("export name '\(export.name)' too long", errno: EINVAL)
        }
        if let description = export.description, description.utf8.count > NbdProtocol.maxStringSize {
            throw BlockError("description '\(description)' too long", errno: EINVAL)
        }
        if self.export(named: export.name) != nil {
            throw BlockError("NBD server already has export named '\(export.name)'", errno: EEXIST)
        }
        let found = try Self.lookUp(bitmaps, for: export)
        // Marked busy only once all are found, so a failure has nothing to undo.
        for bitmap in found { bitmap.setBusy(true) }
        export.bitmaps = found
        export.transmissionFlags = export.computeFlags(multiConn: maxConnections != 1)
        exports.append(export)
    }

    /// nbd_export_create's bitmap checks, bitmap by bitmap in the order given: a name alone is
    /// searched on the node and below it, and an enabled bitmap on a writable node cannot go out
    /// on a read-only export (it could change under the client); none may be busy.
    private static func lookUp(_ requests: [NbdExportBitmap], for export: NbdExport) throws(BlockError) -> [BdrvDirtyBitmap] {
        guard !requests.isEmpty, let node = export.backend.node else { return [] }
        let graph = export.backend.graph
        var found: [BdrvDirtyBitmap] = []
        for request in requests {
            let bitmap: BdrvDirtyBitmap
            switch request {
            case .local(let name):
                guard let (owner, match) = graph.findDirtyBitmap(name, from: node) else {
                    throw BlockError("Bitmap '\(name)' is not found", errno: ENOENT)
                }
                if !export.writable && owner.isWritable && match.isEnabled {
                    throw BlockError("Enabled bitmap '\(name)' incompatible with readonly export", errno: EINVAL)
                }
                bitmap = match
            case .external(let nodeName, let name):
                bitmap = try graph.dirtyBitmap(node: nodeName, name: name).1
            }
            try BlockGraph.checkNotBusy(bitmap)
            found.append(bitmap)
        }
        return found
    }

    /// `nbd-server-remove` / `block-export-del`: `safe` refuses while clients are connected.
    public func removeExport(name: String, mode: NbdRemoveMode = .safe) throws(BlockError) {
        guard let export = export(named: name) else { throw BlockError("Export '\(name)' is not found", errno: ENOENT) }
        if mode == .safe && clientCount(exportName: name) > 0 {
            throw BlockError("export '\(name)' still in use", errno: EBUSY)
        }
        shutDown(export)
    }

    /// `nbd-server-stop`: every export goes, every client and the listener close.
    public func stop() {
        guard isRunning else { return }
        closeListener()
        for export in exports { shutDown(export) }
        for connection in Array(connections.values) { connection.close(reason: "") }
    }

    private func closeListener() {
        watcher.unwatch(listener)
        close(listener)
        listener = -1
        if case .unix(let path) = address { unlink(path) }
    }

    private func shutDown(_ export: NbdExport) {
        exports.removeAll { $0 === export }
        export.isRemoved = true
        for connection in connections.values where connection.attachedExport === export {
            connection.close(reason: "")
        }
        // Taken now: after nbd-server-stop the server itself may be gone before the export is
        // (the monitor drops it at once), and BLOCK_EXPORT_DELETED must still come (blk_exp_delete_bh).
        let notify = onExportDeleted
        let watcher = self.watcher
        let deleted: () -> Void = {
            // nbd_export_delete: the bitmaps are free again.
            for bitmap in export.bitmaps { bitmap.setBusy(false) }
            watcher.runSoon { notify?(export) }
        }
        if export.pendingRequests == 0 { deleted() } else { export.whenIdle = deleted }
    }

    // MARK: clients

    private func acceptClients() {
        while accepting, case .connection(let fd) = Socket.accept(listener) {
            do {
                let connection = try NbdServerConnection(fd: fd, server: self, watcher: watcher)
                connections[ObjectIdentifier(connection)] = connection
                connection.start()
            } catch {
                close(fd)
                log?("Failed to accept NBD client: \(error)")
            }
            updateAccepting()
        }
    }

    /// With max-connections reached the listener pauses, as QEMU's does.
    private func updateAccepting() {
        let wanted = maxConnections == 0 || connections.count < maxConnections
        guard wanted != accepting, isRunning else { return }
        accepting = wanted
        try? watcher.update(listener, interest: wanted ? .readable : [])
    }

    func clientAttached(_ connection: NbdServerConnection) {
        if connection.attachedExport?.isRemoved == true { connection.close(reason: "") }
    }

    func connectionClosed(_ connection: NbdServerConnection, reason: String) {
        connections[ObjectIdentifier(connection)] = nil
        // It may be closing from inside its own handler: keep it alive until that returns.
        watcher.runSoon { withExtendedLifetime(connection) {} }
        if !reason.isEmpty { log?("Disconnect client, due to: \(reason)") }
        updateAccepting()
    }
}
