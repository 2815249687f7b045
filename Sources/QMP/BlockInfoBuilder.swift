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
        // A filter's filtered child is no backing file (bs->backing_file stays empty).
        if let backing = node.backing, !node.driver.isFilter { members.append(("backing_file", .string(backing.filename))) }
        if !node.dirtyBitmaps.isEmpty { members.append(("dirty-bitmaps", .array(node.dirtyBitmaps.map(dirtyInfo)))) }
        members += [
            ("encrypted", .bool(false)), ("bps", .int(0)), ("bps_rd", .int(0)),
            ("cache", .object([("no-flush", .bool(false)), ("direct", .bool(directIO(node))), ("writeback", .bool(true))])),
            ("file", .string(node.filename)),
        ]
        return .object(members)
    }

    /// BlockDirtyInfo, in the member order QEMU 7.2 prints.
    /// An anonymous bitmap (a mirror job's) has no `name`.
    static func dirtyInfo(_ bitmap: BdrvDirtyBitmap) -> JSONValue {
        let name: [(String, JSONValue)] = bitmap.name.isEmpty ? [] : [("name", .string(bitmap.name))]
        return .object(name + [
            ("recording", .bool(bitmap.isRecording)), ("persistent", .bool(false)),
            ("busy", .bool(bitmap.isBusy)), ("granularity", .int(bitmap.granularity)), ("count", .int(bitmap.count)),
        ])
    }

    static func imageInfo(_ node: BlockNode) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("virtual-size", .int(node.driver.length)), ("filename", .string(node.filename)),
            ("format", .string(node.driverName)), ("actual-size", .int(allocatedBytes(node))), ("dirty-flag", .bool(false)),
        ]
        let qcow2 = node.driver as? Qcow2Driver
        if let qcow2 {
            let info = qcow2.formatInfo
            members.append(("cluster-size", .int(Int64(info.clusterSize))))
            members.append(("format-specific", formatSpecific(info)))
        }
        // The backing file named in the header (a backing attached at run time leaves it unchanged).
        if let name = qcow2?.backingFileName, !name.isEmpty {
            members += [
                ("backing-filename", .string(name)),
                ("full-backing-filename", .string(node.backing?.filename ?? name)),
            ]
            if let format = qcow2?.backingFormat { members.append(("backing-filename-format", .string(format))) }
        }
        if let backing = node.backing { members.append(("backing-image", imageInfo(backing))) }
        return .object(members)
    }

    static func formatSpecific(_ info: Qcow2FormatInfo) -> JSONValue {
        var data: [(String, JSONValue)] = [("compat", .string(info.compat))]
        if info.compat == "1.1" {
            data += [("compression-type", .string("zlib")), ("lazy-refcounts", .bool(info.lazyRefcounts))]
        }
        data.append(("refcount-bits", .int(Int64(info.refcountBits))))
        if info.compat == "1.1" { data += [("corrupt", .bool(info.corrupt)), ("extended-l2", .bool(false))] }
        return .object([("type", .string("qcow2")), ("data", .object(data))])
    }

    /// actual-size: what the image's file occupies (format nodes report their file's).
    static func allocatedBytes(_ node: BlockNode) -> Int64 {
        if let file = node.driver as? FileDriver { return file.allocatedBytes }
        return (node.file ?? (node.driver.isFilter ? node.filterOrCowChild : nil)).map(allocatedBytes) ?? 0
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
        // bdrv_query_info: io-status only where a device enabled it (virtio-blk does).
        var members: [(String, JSONValue)] = backend.hasIoStatus ? [("io-status", .string(backend.ioStatus.rawValue))] : []
        members.append(("device", .string(backend.name ?? "")))
        members += [("locked", .bool(false)), ("removable", .bool(false))]
        if let node = backend.node { members.append(("inserted", deviceInfo(skippingImplicitFilters(node)))) }
        if let qdev = backend.deviceName { members.append(("qdev", .string(qdev))) }
        members.append(("type", .string("unknown")))
        return .object(members)
    }

    /// bdrv_skip_implicit_filters: a mirror_top the user did not name is not shown as the medium.
    static func skippingImplicitFilters(_ node: BlockNode) -> BlockNode {
        var current = node
        while current.isAutoNamed, current.driverName == "mirror_top", let below = current.filterOrCowChild { current = below }
        return current
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
        for job in graph.jobs.jobs { add(job, type: "block-job", name: job.id) }
        var edges: [JSONValue] = []
        func edge(_ child: BdrvChild, from parent: AnyObject) {
            guard let parentID = ids[ObjectIdentifier(parent)], let childID = ids[ObjectIdentifier(child.node)] else { return }
            edges.append(.object([
                ("parent", .int(parentID)), ("child", .int(childID)), ("name", .string(child.name)),
                // QEMU lists these highest bit first.
                ("perm", .array(child.perm.qapiNames.reversed().map(JSONValue.string))),
                ("shared-perm", .array(child.sharedPerm.qapiNames.reversed().map(JSONValue.string))),
            ]))
        }
        for backend in graph.allBackends { if let root = backend.root { edge(root, from: backend) } }
        for node in graph.nodes { for child in node.children { edge(child, from: node) } }
        for job in graph.jobs.jobs { for child in job.edges { edge(child, from: job) } }
        return .object([("edges", .array(edges)), ("nodes", .array(nodes))])
    }
}
