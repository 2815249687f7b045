import Block
import Machine

/// `-drive`: QEMU's drive_new. Its own keys (`file`, `format`/`driver`, `if`, `id`, `readonly`,
/// `cache`, `aio`, `werror`, `rerror`) make the format node over a protocol node; every other key is a block option
/// of the format node, passed on as QEMU passes it (`node-name`, `discard`, `file.read-zeroes`,
/// `file.driver=...` with its own `file.*` keys), and refused there if the driver has no such option.
enum DriveOption {
    static func parse(_ argument: String) throws(CommandLineError) -> (drive: MachineConfig.Drive, virtio: Bool) {
        let options = try OptionList(argument)
        let interface = options.value("if") ?? "none"
        guard ["none", "virtio"].contains(interface) else {
            let known = ["ide", "scsi", "floppy", "pflash", "mtd", "sd", "xen"].contains(interface)
            throw CommandLineError(known ? "Parameter 'if' does not accept value '\(interface)': svmm has if=none and if=virtio"
                                         : "unsupported bus type '\(interface)'")
        }
        if options.value("format") != nil && options.value("driver") != nil {
            throw CommandLineError("Cannot specify both 'driver' and 'format'")
        }
        guard let id = options.value("id") else { throw CommandLineError("drive needs an id (-drive ...,if=none,id=ID)") }
        var keys: [(key: String, value: String)] = [("driver", options.value("format") ?? options.value("driver") ?? "raw")]
        keys += try protocolKeys(options)
        if let readOnly = options.value("readonly") { keys.append(("read-only", readOnly)) }
        let own: Set<String> = ["file", "format", "driver", "if", "id", "readonly", "cache", "aio", "werror", "rerror"]
        let passed = options.pairs.filter { !own.contains($0.key) }
        keys += passed
        var drive: MachineConfig.Drive
        do {
            let tree = try OptionValue.fromDottedKeys(keys)
            drive = .init(id: id, options: try BlockdevOptions(tree, fromCommandLine: true), source: argument)
        } catch {
            // bdrv_open_common: a key no layer took is the format's to refuse.
            if let key = passed.first(where: { error.description == "Parameter '\($0.key)' is unexpected" })?.key {
                throw CommandLineError("Block format '\(keys[0].value)' does not support the option '\(key)'")
            }
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

    /// The format node's `file` child: `file=PATH` a file node (with `cache` and `aio`), or
    /// `file=null-co://` (bdrv_find_protocol's prefix); with `file.driver=...` the user's keys.
    private static func protocolKeys(_ options: OptionList) throws(CommandLineError) -> [(key: String, value: String)] {
        let direct = options.value("cache").map { $0 == "none" || $0 == "directsync" } ?? true
        let explicitDriver = options.value("file.driver")
        if let explicitDriver {
            guard explicitDriver == "file" else { return [] }
            return fileNodeKeys(options, direct: direct, filename: options.value("file.filename") == nil ? options.value("file") : nil)
        }
        guard let file = options.value("file") else { throw CommandLineError("Parameter 'file' is missing") }
        if file.hasPrefix("null-co://") { return [("file.driver", "null-co")] }
        if file.hasPrefix("blkdebug:") {
            let (blkdebug, image) = try blkdebugKeys(file)
            return blkdebug.map { (key: "file." + $0.key, value: $0.value) } + [("file.image.driver", "file")]
                + fileNodeKeys(options, direct: direct, filename: image, prefix: "file.image.")
        }
        return [("file.driver", "file")] + fileNodeKeys(options, direct: direct, filename: file)
    }

    private static func fileNodeKeys(_ options: OptionList, direct: Bool, filename: String?,
                                     prefix: String = "file.") -> [(key: String, value: String)] {
        var keys: [(key: String, value: String)] = []
        if let filename { keys.append((prefix + "filename", filename)) }
        if options.value(prefix + "cache.direct") == nil { keys.append((prefix + "cache.direct", direct ? "on" : "off")) }
        if let aio = options.value("aio"), options.value(prefix + "aio") == nil { keys.append((prefix + "aio", aio)) }
        return keys
    }

    /// `blkdebug:CONFIG:IMAGE` (blkdebug_parse_filename): a blkdebug node (with its config file,
    /// if CONFIG is not empty) over the image file.
    private static func blkdebugKeys(_ file: String) throws(CommandLineError) -> ([(key: String, value: String)], String) {
        let rest = file.dropFirst("blkdebug:".count)
        guard let colon = rest.firstIndex(of: ":") else {
            throw CommandLineError("blkdebug requires both config file and image path")
        }
        var keys: [(key: String, value: String)] = [("driver", "blkdebug")]
        if colon != rest.startIndex { keys.append(("config", String(rest[..<colon]))) }
        return (keys, String(rest[rest.index(after: colon)...]))
    }
}
