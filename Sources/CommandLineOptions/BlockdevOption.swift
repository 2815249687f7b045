import Block
import Machine

/// `-blockdev` (QEMU's dotted keyval syntax) and the `-drive` shorthand.
enum BlockdevOption {
    static func parse(_ argument: String) throws(CommandLineError) -> MachineConfig.Blockdev {
        // keyval_parse(optarg, "driver", ...): `-blockdev file,node-name=...` names the driver first.
        let pairs = try OptionList(argument, impliedKey: "driver", keyval: true).pairs
        do {
            let tree = try OptionValue.fromDottedKeys(pairs)
            return .init(options: try BlockdevOptions(tree, fromCommandLine: true), source: argument)
        } catch {
            throw CommandLineError(error.description)
        }
    }

    /// `-drive file=F,format=raw|qcow2,if=none|virtio,id=ID[,readonly=on][,cache=none|writeback][,aio=...]`;
    /// `virtio` says whether the drive also gets a virtio-blk device (`if=virtio`).
    static func parseDrive(_ argument: String) throws(CommandLineError) -> (drive: MachineConfig.Drive, virtio: Bool) {
        let options = try OptionList(argument)
        try options.checkKeys(["file", "format", "if", "id", "readonly", "cache", "aio", "node-name", "discard", "werror", "rerror"])
        let interface = options.value("if") ?? "none"
        guard ["none", "virtio"].contains(interface) else {
            let known = ["ide", "scsi", "floppy", "pflash", "mtd", "sd", "xen"].contains(interface)
            throw CommandLineError(known ? "Parameter 'if' does not accept value '\(interface)': svmm has if=none and if=virtio"
                                         : "unsupported bus type '\(interface)'")
        }
        guard let id = options.value("id") else { throw CommandLineError("drive needs an id (-drive ...,if=none,id=ID)") }
        guard let file = options.value("file") else { throw CommandLineError("Parameter 'file' is missing") }
        let direct = options.value("cache").map { $0 == "none" || $0 == "directsync" } ?? true
        let (protocolKeys, imageFile) = try blkdebugKeys(file)
        var fileKeys: [(key: String, value: String)] = [("driver", "file"), ("filename", imageFile), ("cache.direct", direct ? "on" : "off")]
        if let aio = options.value("aio") { fileKeys.append(("aio", aio)) }
        var keys: [(key: String, value: String)] = [("driver", options.value("format") ?? "raw")]
        let filePrefix = protocolKeys.isEmpty ? "file." : "file.image."
        keys += protocolKeys.map { (key: "file." + $0.key, value: $0.value) }
        keys += fileKeys.map { (key: filePrefix + $0.key, value: $0.value) }
        if let readOnly = options.value("readonly") { keys.append(("read-only", readOnly)) }
        if let nodeName = options.value("node-name") { keys.append(("node-name", nodeName)) }
        if let discard = options.value("discard") { keys.append(("discard", discard)) }
        var drive: MachineConfig.Drive
        do {
            let tree = try OptionValue.fromDottedKeys(keys)
            drive = .init(id: id, options: try BlockdevOptions(tree, fromCommandLine: true), source: argument)
        } catch {
            throw CommandLineError(error.description)
        }
        try applyErrorPolicies(options, to: &drive)
        return (drive, interface == "virtio")
    }

    /// blockdev_init's werror/rerror (parse_block_error_action): no `auto`, no `enospc` for reads.
    private static func applyErrorPolicies(_ options: OptionList, to drive: inout MachineConfig.Drive) throws(CommandLineError) {
        for (key, isRead) in [("werror", false), ("rerror", true)] {
            guard let text = options.value(key) else { continue }
            guard let policy = JobErrorPolicy(rawValue: text), policy != .auto, !(isRead && policy == .enospc) else {
                throw CommandLineError("'\(text)' invalid \(isRead ? "read" : "write") error action")
            }
            if isRead { drive.readErrorPolicy = policy } else { drive.writeErrorPolicy = policy }
        }
    }

    /// `blkdebug:CONFIG:IMAGE` (blkdebug_parse_filename): a blkdebug node (with its config file,
    /// if CONFIG is not empty) over the image file. Other names are plain files.
    private static func blkdebugKeys(_ file: String) throws(CommandLineError) -> ([(key: String, value: String)], String) {
        guard file.hasPrefix("blkdebug:") else { return ([], file) }
        let rest = file.dropFirst("blkdebug:".count)
        guard let colon = rest.firstIndex(of: ":") else {
            throw CommandLineError("blkdebug requires both config file and image path")
        }
        var keys: [(key: String, value: String)] = [("driver", "blkdebug")]
        if colon != rest.startIndex { keys.append(("config", String(rest[..<colon]))) }
        return (keys, String(rest[rest.index(after: colon)...]))
    }
}
