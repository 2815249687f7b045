import Block

/// The JSON shapes of QEMU 7.2's query-blockstats (BlockStats, BlockDeviceStats; block/qapi.c),
/// members in the order QEMU 7.2 prints them.
enum BlockStatsBuilder {
    /// A guest device's or named backend's entry: the backend's own statistics over its node's.
    static func backendStats(_ backend: BlockBackend) -> JSONValue {
        let node = backend.node.map(BlockInfoBuilder.skippingImplicitFilters)
        return nodeStats(node, backendLevel: true, device: backend.name ?? "", qdev: backend.deviceName,
                         accounted: backend.stats)
    }

    /// bdrv_query_bds_stats, and bdrv_query_blk_stats when `accounted` is given.
    static func nodeStats(_ node: BlockNode?, backendLevel: Bool, device: String? = nil, qdev: String? = nil,
                          accounted: BlockAcctStats? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let device { members.append(("device", .string(device))) }
        if let parent = node.flatMap(dataChild) {
            members.append(("parent", nodeStats(parent, backendLevel: backendLevel)))
        }
        members.append(("stats", deviceStats(accounted, highestOffset: node?.writeHighestOffset ?? 0)))
        if backendLevel, let below = node.flatMap(filteredOrBacking) {
            members.append(("backing", nodeStats(below, backendLevel: true)))
        }
        if let node { members.append(("node-name", .string(node.nodeName))) }
        if let file = node?.driver as? FileDriver { members.append(("driver-specific", fileStats(file.discardStats))) }
        if let qdev, !qdev.isEmpty { members.append(("qdev", .string(qdev))) }
        return .object(members)
    }

    /// The child whose statistics show as `parent`: the primary child if it holds data or is
    /// filtered, else the only child holding data (bdrv_query_bds_stats).
    static func dataChild(_ node: BlockNode) -> BlockNode? {
        if let primary = node.children.first(where: { $0.role.contains(.primary) }),
           !primary.role.isDisjoint(with: [.data, .filtered]) {
            return primary.node
        }
        let data = node.children.filter { $0.role.contains(.data) }
        return data.count == 1 ? data[0].node : nil
    }

    /// bdrv_filter_or_cow_bs: the backing file, or what a filter driver passes requests to
    /// (raw is no filter there: QEMU's raw format driver has no is_filter).
    static func filteredOrBacking(_ node: BlockNode) -> BlockNode? {
        if let backing = node.backing { return backing }
        guard node.driver.isFilter, !(node.driver is RawDriver) else { return nil }
        return node.filterOrCowChild
    }

    /// BlockDeviceStats: zeros but the highest written offset for a node without a backend.
    static func deviceStats(_ stats: BlockAcctStats?, highestOffset: Int64) -> JSONValue {
        func figure(_ keyPath: KeyPath<BlockAcctStats, [Int64]>, _ type: BlockAcctType) -> JSONValue {
            .int(stats?[keyPath: keyPath][type.rawValue] ?? 0)
        }
        func histogram(_ type: BlockAcctType) -> [(String, JSONValue)] {
            guard let histogram = stats?.latencyHistograms[type.rawValue] else { return [] }
            let name = type == .read ? "rd" : type == .write ? "wr" : "flush"
            return [("\(name)_latency_histogram", .object([
                ("bins", .array(histogram.bins.map(JSONValue.uint))),
                ("boundaries", .array(histogram.boundaries.map(JSONValue.uint))),
            ]))]
        }
        var members: [(String, JSONValue)] = [
            ("unmap_operations", figure(\.operations, .unmap)), ("unmap_merged", figure(\.mergedOperations, .unmap)),
            ("flush_total_time_ns", figure(\.totalTimeNs, .flush)), ("wr_highest_offset", .int(highestOffset)),
            ("wr_total_time_ns", figure(\.totalTimeNs, .write)), ("failed_wr_operations", figure(\.failedOperations, .write)),
            ("failed_rd_operations", figure(\.failedOperations, .read)), ("wr_merged", figure(\.mergedOperations, .write)),
            ("wr_bytes", figure(\.bytes, .write)), ("timed_stats", .array([])),
            ("failed_unmap_operations", figure(\.failedOperations, .unmap)),
            ("failed_flush_operations", figure(\.failedOperations, .flush)),
            ("account_invalid", .bool(stats?.accountInvalid ?? false)), ("rd_total_time_ns", figure(\.totalTimeNs, .read)),
            ("invalid_unmap_operations", figure(\.invalidOperations, .unmap)),
            ("flush_operations", figure(\.operations, .flush)), ("wr_operations", figure(\.operations, .write)),
            ("unmap_bytes", figure(\.bytes, .unmap)), ("rd_merged", figure(\.mergedOperations, .read)),
            ("rd_bytes", figure(\.bytes, .read)),
        ]
        members += histogram(.write)
        members += [
            ("unmap_total_time_ns", figure(\.totalTimeNs, .unmap)),
            ("invalid_flush_operations", figure(\.invalidOperations, .flush)),
            ("account_failed", .bool(stats?.accountFailed ?? false)),
        ]
        if let idle = stats?.idleTimeNs { members.append(("idle_time_ns", .int(idle))) }
        members += [
            ("rd_operations", figure(\.operations, .read)), ("invalid_wr_operations", figure(\.invalidOperations, .write)),
            ("invalid_rd_operations", figure(\.invalidOperations, .read)),
        ]
        members += histogram(.read)
        members += histogram(.flush)
        return .object(members)
    }

    /// BlockStatsSpecificFile.
    static func fileStats(_ stats: FileDiscardStats) -> JSONValue {
        .object([
            ("discard-bytes-ok", .uint(stats.bytesSucceeded)), ("discard-nb-ok", .uint(stats.succeeded)),
            ("driver", .string("file")), ("discard-nb-failed", .uint(stats.failed)),
        ])
    }
}
