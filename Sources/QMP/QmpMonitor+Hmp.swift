import Block

/// `human-monitor-command`: the HMP commands svmm has (only `qemu-io`, for the iotests), with
/// the monitor's text as QEMU 7.2 returns it (`\n` becomes `\r\n`). Output of qemu-io itself goes
/// to svmm's stdout, as QEMU's does; the command returns "" then.
extension QmpMonitor {
    func hmpCommands() -> [QmpCommand] {
        [
            QmpCommand(async: "human-monitor-command", [.required("command-line", .string), .optional("cpu-index", .int)]) {
                [unowned self] arguments, reply in
                runHmp(arguments.string("command-line")!) { text in
                    reply(.success(.string(Self.monitorText(text))))
                }
            },
        ]
    }

    /// monitor_puts: every newline goes out as CR LF.
    static func monitorText(_ text: String) -> String {
        var out = ""
        for character in text { out += character == "\n" ? "\r\n" : String(character) }
        return out
    }

    private func runHmp(_ line: String, reply: @escaping (String) -> Void) {
        var arguments = HmpArguments(Substring(line))
        arguments.skipSpaces()
        guard let name = try? arguments.string(), !name.isEmpty else { return reply("") }
        switch name {
        case "qemu-io": hmpQemuIo(&arguments, reply: reply)
        default: reply("unknown command: '\(name)'\n")
        }
    }

    /// hmp_qemu_io ("qdev:-d,device:B,command:s"): a BlockBackend by name, a device's (`-d`), or a
    /// temporary one on a node that takes no permissions until the command asks (blk_new(0, ALL)).
    private func hmpQemuIo(_ arguments: inout HmpArguments, reply: @escaping (String) -> Void) {
        let usage = "Try \"help qemu-io\" for more information\n"
        let qdev = arguments.flag("d")
        let device: String
        let command: String
        do throws(HmpArguments.Failure) {
            guard let name = try arguments.string() else { return reply("qemu-io: block device name expected\n" + usage) }
            guard let text = try arguments.string() else { return reply("qemu-io: string expected\n" + usage) }
            (device, command) = (name, text)
        } catch {
            return reply("\(error.message)\n" + usage)
        }
        guard arguments.isAtEnd else { return reply("qemu-io: extraneous characters at the end of line\n" + usage) }
        let backend: BlockBackend
        switch lookUpQemuIoTarget(device, qdev: qdev) {
        case .success(let found): backend = found
        case .failure(let error): return reply("Error: \(error.description)\n")
        }
        qemuIo.run(command, on: backend) { reply("") }
    }

    private func lookUpQemuIoTarget(_ device: String, qdev: Bool) -> Result<BlockBackend, BlockError> {
        let backends = machine.graph.allBackends
        if qdev {
            guard let backend = backends.first(where: { $0.deviceName == device }) else {
                return .failure(BlockError("Device '\(device)' not found"))
            }
            return .success(backend)
        }
        if let named = backends.first(where: { $0.name == device }) { return .success(named) }
        guard let node = machine.graph.node(named: device) else {
            return .failure(BlockError("Cannot find device='' nor node-name='\(device)'"))
        }
        let backend = BlockBackend(graph: machine.graph, perm: [], shared: .all)
        do { try backend.insert(node) } catch { return .failure(error) }
        return .success(backend)
    }
}
