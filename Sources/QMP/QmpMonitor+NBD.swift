import Block
import Machine
import NBD

extension QmpMonitor {
    func nbdCommands() -> [QmpCommand] {
        [
            QmpCommand("nbd-server-start", [.required("addr", .object), .optional("tls-creds", .string),
                                            .optional("tls-authz", .string), .optional("max-connections", .int)]) { [unowned self] arguments throws(QmpError) in
                try startServer(arguments)
                return .emptyObject
            },
            QmpCommand("nbd-server-add", [.required("device", .string), .optional("name", .string), .optional("description", .string),
                                          .optional("writable", .bool), .optional("bitmap", .string)]) { [unowned self] arguments throws(QmpError) in
                let device = arguments.string("device")!
                let name = arguments.string("name") ?? device
                // qmp_nbd_server_add: a read-only node is exported read-only, writable or not.
                let readOnly = (try? machine.graph.lookup(device))?.readOnly ?? false
                try addExport(id: name, node: device, name: name, writable: (arguments.bool("writable") ?? false) && !readOnly,
                              description: arguments.string("description"))
                return .emptyObject
            },
            QmpCommand("nbd-server-remove", [.required("name", .string), .optional("mode", .string)]) { [unowned self] arguments throws(QmpError) in
                try removeExport(id: arguments.string("name")!, mode: arguments.string("mode"))
                return .emptyObject
            },
            QmpCommand("nbd-server-stop") { [unowned self] _ throws(QmpError) in
                guard let server = nbdServer else { throw QmpError("NBD server not running") }
                server.stop()
                nbdServer = nil
                return .emptyObject
            },
            QmpCommand("block-export-add", [.required("type", .string), .required("id", .string), .required("node-name", .string),
                                            .optional("name", .string), .optional("writable", .bool), .optional("description", .string),
                                            .optional("writethrough", .bool), .optional("fixed-iothread", .bool),
                                            .optional("iothread", .string), .optional("allocation-depth", .bool),
                                            .optional("bitmaps", .array)]) { [unowned self] arguments throws(QmpError) in
                let type = arguments.string("type")!
                guard type == "nbd" else { throw QmpError("Parameter 'type' does not accept value '\(type)'") }
                let id = arguments.string("id")!
                try addExport(id: id, node: arguments.string("node-name")!, name: arguments.string("name") ?? arguments.string("node-name")!,
                              writable: arguments.bool("writable") ?? false, description: arguments.string("description"))
                return .emptyObject
            },
            QmpCommand("block-export-del", [.required("id", .string), .optional("mode", .string)]) { [unowned self] arguments throws(QmpError) in
                try removeExport(id: arguments.string("id")!, mode: arguments.string("mode"))
                return .emptyObject
            },
            QmpCommand("query-block-exports") { [unowned self] _ in
                .array((nbdServer?.exports ?? []).reversed().map { export in  // newest first, as QEMU lists them
                    .object([("type", .string("nbd")), ("id", .string(exportIDs[ObjectIdentifier(export)] ?? export.name)),
                             ("node-name", .string(export.backend.node?.nodeName ?? "")), ("shutting-down", .bool(false))])
                })
            },
        ]
    }

    private func startServer(_ arguments: QmpArguments) throws(QmpError) {
        if nbdServer != nil { throw QmpError("NBD server already running") }
        if arguments.string("tls-creds") != nil { throw QmpError("TLS is not supported by svmm's NBD server") }
        let address = try Self.legacySocketAddress(arguments.values["addr"]!)
        do throws(BlockError) {
            let server = try NbdServer(address: address, watcher: machine.eventLoop, maxConnections: Int(arguments.int("max-connections") ?? 0))
            server.onExportDeleted = { [unowned self] export in exportDeleted(export) }
            nbdServer = server
        } catch {
            throw QmpError(error)
        }
    }

    /// QAPI's SocketAddressLegacy, which nbd-server-start takes: `{type, data: {...}}`.
    static func legacySocketAddress(_ value: JSONValue) throws(QmpError) -> SocketAddress {
        guard let type = value["type"]?.stringValue else { throw QmpError("Parameter 'addr.type' is missing") }
        guard let data = value["data"] else { throw QmpError("Parameter 'addr.data' is missing") }
        switch type {
        case "unix":
            guard let path = data["path"]?.stringValue else { throw QmpError("Parameter 'addr.data.path' is missing") }
            return .unix(path: path)
        case "inet":
            guard let host = data["host"]?.stringValue else { throw QmpError("Parameter 'addr.data.host' is missing") }
            guard let port = data["port"]?.stringValue else { throw QmpError("Parameter 'addr.data.port' is missing") }
            return .inet(host: host, port: port)
        default:
            throw QmpError("Parameter 'addr.type' does not accept value '\(type)'")
        }
    }

    /// blk_exp_add for NBD: a backend on the node taking consistent read (and write if writable),
    /// sharing all but resize, checked against the node's other users (a guest device among them).
    private func addExport(id: String, node nodeName: String, name: String, writable: Bool, description: String?) throws(QmpError) {
        guard let server = nbdServer else { throw QmpError("NBD server not running") }
        if exportIDs.values.contains(id) { throw QmpError("Block export id '\(id)' is already in use") }
        do throws(BlockError) {
            let node = try machine.graph.lookup(nodeName)
            if writable && node.readOnly { throw BlockError("Cannot export read-only node as writable") }
            // blk_exp_add: an export lets others do anything but resize the node under it.
            let backend = BlockBackend(graph: machine.graph, perm: writable ? [.consistentRead, .write] : [.consistentRead],
                                       shared: BlockPermission.all.subtracting(.resize))
            try backend.insert(node)
            let export = NbdExport(name: name, backend: backend, writable: writable, description: description)
            do {
                try server.addExport(export)
            } catch {
                backend.removeNode()
                throw error
            }
            exportIDs[ObjectIdentifier(export)] = id
        } catch {
            throw QmpError(error)
        }
    }

    private func removeExport(id: String, mode: String?) throws(QmpError) {
        guard let server = nbdServer else { throw QmpError("NBD server not running") }
        guard let export = server.exports.first(where: { exportIDs[ObjectIdentifier($0)] == id }) else {
            throw QmpError("Export '\(id)' is not found")
        }
        let removeMode: NbdRemoveMode
        switch mode {
        case nil: removeMode = .safe
        case let text?:
            guard let parsed = NbdRemoveMode(rawValue: text) else { throw QmpError("Parameter 'mode' does not accept value '\(text)'") }
            removeMode = parsed
        }
        do throws(BlockError) { try server.removeExport(name: export.name, mode: removeMode) } catch { throw QmpError(error) }
    }

    /// The export is really gone: its backend lets go of the node (and its permissions).
    private func exportDeleted(_ export: NbdExport) {
        export.backend.removeNode()
        let id = exportIDs.removeValue(forKey: ObjectIdentifier(export)) ?? export.name
        emit("BLOCK_EXPORT_DELETED", data: .object([("id", .string(id))]))
    }
}
