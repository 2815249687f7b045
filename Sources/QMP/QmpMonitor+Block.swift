import Block
import Machine

extension QmpMonitor {
    func blockCommands() -> [QmpCommand] {
        [
            QmpCommand(async: "blockdev-add", nil) { [unowned self] arguments, reply in
                guard case .object(let members) = arguments.values.optionValue else {
                    return reply(.failure(QmpError("QMP input member 'arguments' must be an object")))
                }
                let options: BlockdevOptions
                do throws(BlockError) {
                    options = try BlockdevOptions(members, fromCommandLine: false)
                } catch {
                    return reply(.failure(QmpError(error)))
                }
                machine.openBlockdev(options) { result in reply(result.map { .emptyObject }.mapError(QmpError.init)) }
            },
            QmpCommand(async: "blockdev-del", [.required("node-name", .string)]) { [unowned self] arguments, reply in
                deleteNode(arguments.string("node-name")!, reply: reply)
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
            QmpCommand(async: "blockdev-snapshot", [.required("node", .string), .required("overlay", .string)]) { [unowned self] arguments, reply in
                machine.graph.snapshot(node: arguments.string("node")!, overlay: arguments.string("overlay")!) { result in
                    reply(result.map { .emptyObject }.mapError(QmpError.init))
                }
            },
        ]
    }

    /// qmp_blockdev_del's checks, in QEMU's order and words; the node goes once nothing is in
    /// flight on it (bdrv_close drains first).
    private func deleteNode(_ name: String, reply: @escaping QmpCommand.Reply) {
        guard let node = machine.graph.node(named: name) else {
            return reply(.failure(QmpError("Failed to find node with node-name='\(name)'")))
        }
        if node.parents.contains(where: { $0.parent is BlockBackend }) { return reply(.failure(QmpError("Node \(name) is in use"))) }
        do throws(BlockError) { try node.checkNotBlocked(.driveDel) } catch { return reply(.failure(QmpError(error))) }
        guard node.isMonitorOwned else { return reply(.failure(QmpError("Node \(name) is not owned by the monitor"))) }
        if !node.parents.isEmpty { return reply(.failure(QmpError("Block device \(name) is in use"))) }
        machine.graph.drain([node]) { [unowned self] end in
            let result = Result { () throws(BlockError) in try machine.graph.remove(node) }
            end()
            reply(result.map { .emptyObject }.mapError(QmpError.init))
        }
    }
}
