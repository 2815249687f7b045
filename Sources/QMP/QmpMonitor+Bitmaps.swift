import Block

extension QmpMonitor {
    /// block-dirty-bitmap-add/-remove/-clear/-enable/-disable/-merge (QEMU 7.2's argument shapes).
    func bitmapCommands() -> [QmpCommand] {
        let nodeAndName: [QmpArguments.Member] = [.required("node", .string), .required("name", .string)]
        return [
            QmpCommand("block-dirty-bitmap-add", nodeAndName + [
                .optional("granularity", .int), .optional("persistent", .bool), .optional("disabled", .bool),
            ]) { [unowned self] arguments throws(QmpError) in
                let granularity = arguments.int("granularity")
                if let granularity, granularity < 0 || granularity > Int64(UInt32.max) {
                    throw QmpError("Parameter 'granularity' expects uint32_t")
                }
                try block { () throws(BlockError) in
                    try machine.graph.addDirtyBitmap(node: arguments.string("node")!, name: arguments.string("name")!,
                                                     granularity: granularity, persistent: arguments.bool("persistent") ?? false,
                                                     disabled: arguments.bool("disabled") ?? false)
                }
                return .emptyObject
            },
            QmpCommand("block-dirty-bitmap-remove", nodeAndName) { [unowned self] arguments throws(QmpError) in
                try block { () throws(BlockError) in try machine.graph.removeDirtyBitmap(node: arguments.string("node")!, name: arguments.string("name")!) }
                return .emptyObject
            },
            QmpCommand("block-dirty-bitmap-clear", nodeAndName) { [unowned self] arguments throws(QmpError) in
                try block { () throws(BlockError) in try machine.graph.clearDirtyBitmap(node: arguments.string("node")!, name: arguments.string("name")!) }
                return .emptyObject
            },
            QmpCommand("block-dirty-bitmap-enable", nodeAndName) { [unowned self] arguments throws(QmpError) in
                try block { () throws(BlockError) in
                    try machine.graph.setDirtyBitmapEnabled(node: arguments.string("node")!, name: arguments.string("name")!, true)
                }
                return .emptyObject
            },
            QmpCommand("block-dirty-bitmap-disable", nodeAndName) { [unowned self] arguments throws(QmpError) in
                try block { () throws(BlockError) in
                    try machine.graph.setDirtyBitmapEnabled(node: arguments.string("node")!, name: arguments.string("name")!, false)
                }
                return .emptyObject
            },
            QmpCommand("block-dirty-bitmap-merge", [
                .required("node", .string), .required("target", .string), .required("bitmaps", .array),
            ]) { [unowned self] arguments throws(QmpError) in
                let sources = try Self.bitmapSources(arguments.values["bitmaps"])
                try block { () throws(BlockError) in
                    try machine.graph.mergeDirtyBitmaps(node: arguments.string("node")!, target: arguments.string("target")!, sources: sources)
                }
                return .emptyObject
            },
        ]
    }

    /// BlockDirtyBitmapOrStr: a bitmap name on the target's node, or `{node, name}`.
    static func bitmapSources(_ value: JSONValue?) throws(QmpError) -> [(node: String?, name: String)] {
        guard case .array(let items)? = value else { return [] }
        var sources: [(node: String?, name: String)] = []
        for (index, item) in items.enumerated() {
            if let name = item.stringValue {
                sources.append((nil, name))
                continue
            }
            guard case .object = item else {
                throw QmpError("Invalid parameter type for 'bitmaps[\(index)]', expected: BlockDirtyBitmapOrStr")
            }
            let checked = try QmpArguments(item, schema: [.required("node", .string), .required("name", .string)])
            sources.append((checked.string("node"), checked.string("name")!))
        }
        return sources
    }

    /// Runs block-layer work, its error as QMP's.
    func block(_ work: () throws(BlockError) -> Void) throws(QmpError) {
        do throws(BlockError) { try work() } catch { throw QmpError(error) }
    }
}
