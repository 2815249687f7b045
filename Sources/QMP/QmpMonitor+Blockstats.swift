import Block

extension QmpMonitor {
    /// query-blockstats and block-latency-histogram-set (block/qapi.c, block/qapi-sysemu.c).
    func blockstatsCommands() -> [QmpCommand] {
        [
            QmpCommand("query-blockstats", [.optional("query-nodes", .bool)]) { [unowned self] arguments in
                if arguments.bool("query-nodes") == true {
                    return .array(machine.graph.nodes.map { BlockStatsBuilder.nodeStats($0, backendLevel: false) })
                }
                let backends = machine.graph.allBackends.filter { $0.name != nil || $0.deviceName != nil }
                return .array(backends.map(BlockStatsBuilder.backendStats))
            },
            QmpCommand("block-latency-histogram-set", [
                .required("id", .string), .optional("boundaries", .array), .optional("boundaries-read", .array),
                .optional("boundaries-write", .array), .optional("boundaries-flush", .array),
            ]) { [unowned self] arguments throws(QmpError) in
                try setLatencyHistograms(arguments)
                return .emptyObject
            },
        ]
    }

    /// qmp_block_latency_histogram_set: `boundaries` for every type a specific list does not name;
    /// no list at all clears them.
    private func setLatencyHistograms(_ arguments: QmpArguments) throws(QmpError) {
        let lists = try ["boundaries", "boundaries-read", "boundaries-write", "boundaries-flush"].map {
            (name: String) throws(QmpError) in try uint64List(arguments, name)
        }
        let id = arguments.string("id")!
        // qmp_get_blk(NULL, id): the guest device with that id (or QOM path).
        guard let stats = machine.graph.allBackends.first(where: { $0.deviceName == id })?.stats else {
            throw QmpError("Device '\(id)' not found", class: .deviceNotFound)
        }
        guard lists.contains(where: { $0 != nil }) else { return stats.clearLatencyHistograms() }
        for (type, name, specific) in [(BlockAcctType.read, "read", lists[1]), (.write, "write", lists[2]), (.flush, "flush", lists[3])] {
            guard let boundaries = specific ?? lists[0] else { continue }
            guard stats.setLatencyHistogram(type, boundaries: boundaries) else {
                throw QmpError("Device '\(id)' set \(name) boundaries fail")
            }
        }
    }

    /// A uint64 list argument as QEMU's input visitor reads it (a negative number wraps around).
    private func uint64List(_ arguments: QmpArguments, _ name: String) throws(QmpError) -> [UInt64]? {
        guard case .array(let elements)? = arguments.values[name] else { return nil }
        return try elements.enumerated().map { (index, element) throws(QmpError) -> UInt64 in
            switch element {
            case .int(let number): return UInt64(bitPattern: number)
            case .uint(let number): return number
            default: throw QmpError("Parameter '\(name)[\(index)]' expects uint64")
            }
        }
    }
}
