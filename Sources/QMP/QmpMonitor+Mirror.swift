import Block
import Machine

/// blockdev-mirror and drive-mirror (blockdev.c qmp_blockdev_mirror / qmp_drive_mirror): the
/// arguments as QAPI checks them, then the block layer's mirror.
extension QmpMonitor {
    func mirrorCommands() -> [QmpCommand] {
        [
            QmpCommand("blockdev-mirror", Self.commonMirrorMembers + [
                .required("target", .string), .optional("filter-node-name", .string),
            ]) { [unowned self] arguments throws(QmpError) in
                var options = try mirrorOptions(arguments)
                options.filterNodeName = arguments.string("filter-node-name")
                try block { () throws(BlockError) in
                    try machine.graph.startMirror(device: arguments.string("device")!, target: arguments.string("target")!,
                                                  options: options, loop: machine.eventLoop)
                }
                return .emptyObject
            },
            QmpCommand(async: "drive-mirror", Self.commonMirrorMembers + [
                .required("target", .string), .optional("format", .string), .optional("node-name", .string),
                .optional("mode", .string), .optional("unmap", .bool),
            ]) { [unowned self] arguments, reply in
                driveMirror(arguments, reply: reply)
            },
        ]
    }

    /// The members blockdev-mirror and drive-mirror share.
    static var commonMirrorMembers: [QmpArguments.Member] { [
        .optional("job-id", .string), .required("device", .string), .optional("replaces", .string),
        .required("sync", .string), .optional("speed", .int), .optional("granularity", .uint32),
        .optional("buf-size", .int), .optional("on-source-error", .string), .optional("on-target-error", .string),
        .optional("copy-mode", .string), .optional("auto-finalize", .bool), .optional("auto-dismiss", .bool),
    ] }

    /// QAPI's enum check: `Parameter 'x' does not accept value 'y'`.
    static func enumeration<T: RawRepresentable>(_ arguments: QmpArguments, _ name: String, _ all: [String],
                                                 as type: T.Type) throws(QmpError) -> T? where T.RawValue == String {
        guard let text = arguments.string(name) else { return nil }
        guard all.contains(text) else { throw QmpError("Parameter '\(name)' does not accept value '\(text)'") }
        return T(rawValue: text)
    }

    func mirrorOptions(_ arguments: QmpArguments) throws(QmpError) -> MirrorOptions {
        let syncNames = ["top", "full", "none", "incremental", "bitmap"]
        guard let syncText = arguments.string("sync"), syncNames.contains(syncText) else {
            throw QmpError("Parameter 'sync' does not accept value '\(arguments.string("sync") ?? "")'")
        }
        guard let sync = MirrorSyncMode(rawValue: syncText) else { throw QmpError("Sync mode '\(syncText)' not supported") }
        let device = arguments.string("device")!
        // block_job_create: without job-id the job is named after the device (a named backend).
        let defaultID = machine.graph.allBackends.first { $0.name == device }?.name ?? ""
        var options = MirrorOptions(jobID: arguments.string("job-id") ?? defaultID, sync: sync)
        options.speed = arguments.int("speed") ?? 0
        options.granularity = Int64(arguments.uint32("granularity") ?? 0)
        options.bufSize = arguments.int("buf-size") ?? 0
        let policies = JobErrorPolicy.allCases.map(\.rawValue)
        options.onSourceError = try Self.enumeration(arguments, "on-source-error", policies, as: JobErrorPolicy.self) ?? .report
        options.onTargetError = try Self.enumeration(arguments, "on-target-error", policies, as: JobErrorPolicy.self) ?? .report
        options.copyMode = try Self.enumeration(arguments, "copy-mode", ["background", "write-blocking"], as: MirrorCopyMode.self) ?? .background
        options.autoFinalize = arguments.bool("auto-finalize") ?? true
        options.autoDismiss = arguments.bool("auto-dismiss") ?? true
        options.replaces = arguments.string("replaces")
        return options
    }

    /// qmp_drive_mirror: opens (and in absolute-paths mode first creates) the target, then mirrors.
    private func driveMirror(_ arguments: QmpArguments, reply: @escaping QmpCommand.Reply) {
        let graph = machine.graph
        let options: MirrorOptions
        let source: BlockNode
        let plan: DriveMirrorTarget
        do throws(QmpError) {
            options = try mirrorOptions(arguments)
            do throws(BlockError) { source = try graph.lookup(arguments.string("device")!) } catch { throw QmpError(error) }
            _ = try Self.enumeration(arguments, "mode", ["existing", "absolute-paths"], as: DriveMirrorTarget.Mode.self)
            plan = try DriveMirrorTarget(arguments, source: source, sync: options.sync)
        } catch {
            return reply(.failure(error))
        }
        do throws(BlockError) { try plan.createImage() } catch { return reply(.failure(QmpError(error))) }
        let nodeName = plan.nodeName ?? graph.makeAutoName()
        var blockdev: BlockdevOptions
        do throws(BlockError) { blockdev = try BlockdevOptions(plan.blockdevOptions(nodeName: plan.nodeName), fromCommandLine: false) } catch {
            return reply(.failure(QmpError(error)))
        }
        // An auto name ('#block…') is none a user may give, so it is set after the options' checks.
        blockdev.nodeName = nodeName
        machine.openBlockdev(blockdev) { [unowned self] result in
            if case .failure(let error) = result { return reply(.failure(QmpError(error))) }
            var options = options
            options.backingOnCompletion = plan.backingNodeOnCompletion
            options.unmap = arguments.bool("unmap") ?? true
            do throws(BlockError) {
                try graph.startMirror(device: arguments.string("device")!, target: nodeName, options: options, loop: machine.eventLoop)
                reply(.success(.emptyObject))
            } catch {
                if let node = graph.node(named: nodeName), node.parents.isEmpty { try? graph.remove(node) }
                reply(.failure(QmpError(error)))
            }
        }
    }
}
