import Block

/// The JSON shapes of QEMU 7.2's block queries (BlockDeviceInfo, ImageInfo, BlockInfo, XDbgBlockGraph).
enum BlockInfoBuilder {
    static func deviceInfo(_ node: BlockNode) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("iops_rd", .int(0)), ("detect_zeroes", .string("off")), ("image", imageInfo(node)), ("iops_wr", .int(0)),
            ("ro", .bool(node.readOnly)), ("node-name", .string(node.nodeName)),
            ("backing_file_depth", .int(Int64(backingDepth(node)))), ("drv", .string(node.driverName)),
            ("iops", .int(0)), ("bps_wr", .int(0)), ("write_threshold", .int(0)),
        ]
        if let backing = node.backing { members.append(("backing_file", .string(backing.filename))) }
        members += [
            ("encrypted", .bool(false)), ("bps", .int(0)), ("bps_rd", .int(0)),
            ("cache", .object([("no-flush", .bool(false)), ("direct", .bool(directIO(node))), ("writeback", .bool(true))])),
            ("file", .string(node.filename)),
        ]
        return .object(members)
    }

    static func imageInfo(_ node: BlockNode) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("virtual-size", .int(node.driver.length)), ("filename", .string(node.filename)),
            ("format", .string(node.driverName)),
        ]
        if let backing = node.backing {
            members += [
                ("backing-filename", .string(backing.filename)),
                ("full-backing-filename", .string(backing.filename)),
                ("backing-filename-format", .string(backing.driverName)),
                ("backing-image", imageInfo(backing)),
            ]
        }
        if node.driverName == "qcow2" { members.append(("dirty-flag", .bool(false))) }
        return .object(members)
    }

    static func backingDepth(_ node: BlockNode) -> Int {
        node.backing.map { 1 + backingDepth($0) } ?? 0
    }

    /// cache.direct of the protocol node at the bottom of the file chain.
    static func directIO(_ node: BlockNode) -> Bool {
        if let file = node.driver as? FileDriver { return file.options.directIO }
        return node.file.map(directIO) ?? false
    }

    /// query-block: the BlockBackends a monitor user can name (named ones and guest devices).
    static func blockInfo(_ backend: BlockBackend) -> JSONValue {
        var members: [(String, JSONValue)] = [("io-status", .string("ok")), ("device", .string(backend.name ?? ""))]
        members += [("locked", .bool(false)), ("removable", .bool(false))]
        if let node = backend.node { members.append(("inserted", deviceInfo(node))) }
        if let qdev = backend.deviceName { members.append(("qdev", .string(qdev))) }
        members.append(("type", .string("unknown")))
        return .object(members)
    }

    /// x-debug-query-block-graph: backends first, then nodes, numbered in that order; then edges.
    static func graph(_ graph: BlockGraph) -> JSONValue {
        var ids: [ObjectIdentifier: Int64] = [:]
        var nodes: [JSONValue] = []
        func add(_ object: AnyObject, type: String, name: String) {
            let id = Int64(ids.count + 1)
            ids[ObjectIdentifier(object)] = id
            nodes.append(.object([("name", .string(name)), ("type", .string(type)), ("id", .int(id))]))
        }
        for backend in graph.allBackends {
            add(backend, type: "block-backend", name: backend.name ?? backend.deviceName ?? "")
        }
        for node in graph.nodes { add(node, type: "block-driver", name: node.nodeName) }
        var edges: [JSONValue] = []
        func edge(_ child: BdrvChild, from parent: AnyObject) {
            guard let parentID = ids[ObjectIdentifier(parent)], let childID = ids[ObjectIdentifier(child.node)] else { return }
            edges.append(.object([
                ("parent", .int(parentID)), ("child", .int(childID)), ("name", .string(child.name)),
                ("perm", .array(child.perm.qapiNames.map(JSONValue.string))),
                ("shared-perm", .array(child.sharedPerm.qapiNames.map(JSONValue.string))),
            ]))
        }
        for backend in graph.allBackends { if let root = backend.root { edge(root, from: backend) } }
        for node in graph.nodes { for child in node.children { edge(child, from: node) } }
        return .object([("edges", .array(edges)), ("nodes", .array(nodes))])
    }
}
