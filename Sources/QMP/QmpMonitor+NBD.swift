import Block
import Machine
import NBD

extension QmpMonitor {
    func nbdCommands() -> [QmpCommand] {
        [
            QmpCommand("nbd-server-start", [.required("addr", .object), .optional("tls-creds", .string),
                                            .optional("tls-authz", .string), .optional("max-connections", .uint32)]) { [unowned self] arguments throws(QmpError) in
                try startServer(arguments)
                return .emptyObject
            },
            QmpCommand("nbd-server-add", [.required("device", .string), .optional("name", .string), .optional("description", .string),
                                          .optional("writable", .bool), .optional("bitmap", .string)]) { [unowned self] arguments throws(QmpError) in
                let device = arguments.string("device")!
                let name = arguments.string("name") ?? device
                // qmp_nbd_server_add: a read-only node is exported read-only, writable or not.
                let readOnly = (try? machine.graph.lookup(device))?.readOnly ?? false
                // qmp_nbd_server_add: `bitmap` becomes block-export-add's one-entry `bitmaps`.
                try addExport(id: name, node: device, name: name, writable: (arguments.bool("writable") ?? false) && !readOnly,
                              description: arguments.string("description"), bitmaps: arguments.string("bitmap").map { [.local($0)] } ?? [])
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
                // Options whose non-default values svmm does not implement are refused, not ignored.
                if arguments.bool("allocation-depth") == true {
                    throw QmpError("allocation-depth is not supported: svmm offers no qemu:allocation-depth meta context")
                }
                if arguments.bool("writethrough") == true { throw QmpError("writethrough is not supported by svmm's exports") }
                if arguments.string("iothread") != nil { throw QmpError("svmm has no iothreads: 'iothread' cannot be used") }
                let id = arguments.string("id")!
                let bitmaps: [NbdExportBitmap] = try Self.bitmapSources(arguments.values["bitmaps"]).map { source in
                    source.node.map { .external(node: $0, name: source.name) } ?? .local(source.name)
                }
                try addExport(id: id, node: arguments.string("node-name")!, name: arguments.string("name") ?? arguments.string("node-name")!,
                              writable: arguments.bool("writable") ?? false, description: arguments.string("description"), bitmaps: bitmaps)
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
            let server = try NbdServer(address: address, watcher: machine.eventLoop, maxConnections: Int(arguments.uint32("max-connections") ?? 0))
            server.onExportDeleted = { [unowned self] export in exportDeleted(export) }
            nbdServer = server
        } catch {
            throw QmpError(error)
        }
    }

    /// QAPI's SocketAddressLegacy, which nbd-server-start takes: `{type, data: {...}}`, checked as
    /// the input visitor checks it: members in schema order, each struct's leftovers after them.
    static func legacySocketAddress(_ value: JSONValue) throws(QmpError) -> SocketAddress {
        let type = try member(value, "type", in: "addr", .string)?.stringValue
        guard let type else { throw QmpError("Parameter 'addr.type' is missing") }
        guard type == "unix" || type == "inet" else { throw QmpError("Parameter 'addr.type' does not accept value '\(type)'") }
        guard let data = try member(value, "data", in: "addr", .object) else { throw QmpError("Parameter 'addr.data' is missing") }
        let address: SocketAddress
        if type == "unix" {
            guard let path = try member(data, "path", in: "addr.data", .string)?.stringValue else {
                throw QmpError("Parameter 'addr.data.path' is missing")
            }
            _ = try member(data, "abstract", in: "addr.data", .bool)
            _ = try member(data, "tight", in: "addr.data", .bool)
            try onlyMembers(data, ["path", "abstract", "tight"], in: "addr.data")
            try checkNoNul(path, "addr.data.path")
            address = .unix(path: path)
        } else {
            guard let host = try member(data, "host", in: "addr.data", .string)?.stringValue else {
                throw QmpError("Parameter 'addr.data.host' is missing")
            }
            guard let port = try member(data, "port", in: "addr.data", .string)?.stringValue else {
                throw QmpError("Parameter 'addr.data.port' is missing")
            }
            for flag in ["numeric", "ipv4", "ipv6", "keep-alive"] { _ = try member(data, flag, in: "addr.data", .bool) }
            try onlyMembers(data, ["host", "port", "numeric", "ipv4", "ipv6", "keep-alive"], in: "addr.data")
            try checkNoNul(host, "addr.data.host")
            try checkNoNul(port, "addr.data.port")
            address = .inet(host: host, port: port)
        }
        try onlyMembers(value, ["type", "data"], in: "addr")
        return address
    }

    private static func member(_ object: JSONValue, _ key: String, in path: String, _ kind: QmpArguments.Kind) throws(QmpError) -> JSONValue? {
        guard let value = object[key] else { return nil }
        let matches = switch (kind, value) {
        case (.string, .string), (.bool, .bool), (.object, .object): true
        default: false
        }
        guard matches else { throw QmpError("Invalid parameter type for '\(path).\(key)', expected: \(kind.name)") }
        return value
    }

    private static func onlyMembers(_ object: JSONValue, _ known: Set<String>, in path: String) throws(QmpError) {
        guard case .object(let members) = object else { return }
        if let extra = members.first(where: { !known.contains($0.0) }) {
            throw QmpError("Parameter '\(path).\(extra.0)' is unexpected")
        }
    }

    /// QEMU would bind a name with the bytes \xC0\x80 in it; a C string would end at the NUL and
    /// bind another name, so svmm refuses it.
    private static func checkNoNul(_ text: String, _ path: String) throws(QmpError) {
        if text.utf8.contains(0) { throw QmpError("Parameter '\(path)' must not contain a NUL character") }
    }

    /// blk_exp_add for NBD: a backend on the node taking consistent read (and write if writable),
    /// sharing all but resize, checked against the node's other users (a guest device among them).
    private func addExport(id: String, node nodeName: String, name: String, writable: Bool, description: String?,
                           bitmaps: [NbdExportBitmap]) throws(QmpError) {
        guard let server = nbdServer else { throw QmpError("NBD server not running") }
        // blk_exp_add: the id (for nbd-server-add, the export name) must be a well-formed QEMU id.
        guard BlockdevOptions.isWellFormedID(id) else { throw QmpError("Invalid block export id") }
        if exportIDs.values.contains(id) { throw QmpError("Block export id '\(id)' is already in use") }
        do throws(BlockError) {
            let node = try machine.graph.lookup(nodeName)
            // blk_exp_add: "Block exports are used for non-shared storage migration", so the
            // node is activated even while an incoming migration waits.
            try machine.graph.activate([node])
            if writable && node.readOnly { throw BlockError("Cannot export read-only node as writable") }
            // blk_exp_add: an export lets others do anything but resize the node under it.
            let backend = BlockBackend(graph: machine.graph, perm: writable ? [.consistentRead, .write] : [.consistentRead],
                                       shared: BlockPermission.all.subtracting(.resize))
            try backend.insert(node)
            let export = NbdExport(name: name, backend: backend, writable: writable, description: description)
            do {
                try server.addExport(export, bitmaps: bitmaps)
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
        // QEMU's blk_exp_find: with no server there is no export either, so the same answer.
        guard let server = nbdServer, let export = server.exports.first(where: { exportIDs[ObjectIdentifier($0)] == id }) else {
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
