import Block
import Machine

extension QmpMonitor {
    func blockCommands() -> [QmpCommand] {
        [
            QmpCommand("blockdev-add", nil) { [unowned self] arguments throws(QmpError) in
                guard case .object(let members) = arguments.values.optionValue else { throw QmpError("QMP input member 'arguments' must be an object") }
                do throws(BlockError) {
                    let options = try BlockdevOptions(members, fromCommandLine: false)
                    try machine.opener.open(options)
                } catch {
                    throw QmpError(error)
                }
                return .emptyObject
            },
            QmpCommand("blockdev-del", [.required("node-name", .string)]) { [unowned self] arguments throws(QmpError) in
                try deleteNode(arguments.string("node-name")!)
                return .emptyObject
            },
            QmpCommand("query-named-block-nodes", [.optional("flat", .bool)]) { [unowned self] _ in
                .array(machine.graph.nodes.reversed().map(BlockInfoBuilder.deviceInfo))  // newest first, as QEMU
            },
            QmpCommand("query-block") { [unowned self] _ in
                .array(machine.graph.allBackends.filter { $0.name != nil || $0.deviceName != nil }.map(BlockInfoBuilder.blockInfo))
            },
            QmpCommand("x-debug-query-block-graph") { [unowned self] _ in
                BlockInfoBuilder.graph(machine.graph)
            },
            QmpCommand("blockdev-snapshot", [.required("node", .string), .required("overlay", .string)]) { [unowned self] arguments throws(QmpError) in
                do throws(BlockError) {
                    try machine.graph.snapshot(node: arguments.string("node")!, overlay: arguments.string("overlay")!)
                } catch {
                    throw QmpError(error)
                }
                return .emptyObject
            },
        ]
    }

    /// qmp_blockdev_del's checks, in QEMU's order and words.
    private func deleteNode(_ name: String) throws(QmpError) {
        guard let node = machine.graph.node(named: name) else {
            throw QmpError("Failed to find node with node-name='\(name)'")
        }
        if node.parents.contains(where: { $0.parent is BlockBackend }) { throw QmpError("Node \(name) is in use") }
        guard node.isMonitorOwned else { throw QmpError("Node \(name) is not owned by the monitor") }
        if !node.parents.isEmpty { throw QmpError("Block device \(name) is in use") }
        do throws(BlockError) { try machine.graph.remove(node) } catch { throw QmpError(error) }
    }
}
