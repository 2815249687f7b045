import Block
import Glibc

/// drive-mirror's `target` as QEMU 7.2 treats it: a file name (created in mode `absolute-paths`,
/// opened as it is in mode `existing`) or an NBD URI (`nbd:unix:PATH[:exportname=E]`,
/// `nbd+unix:///E?socket=PATH`, `nbd://HOST[:PORT]/E`, `nbd:HOST:PORT[:exportname=E]`), and the
/// backing file the new image names (the source's backing for `top`, the source for `none`).
struct DriveMirrorTarget {
    enum Mode: String {
        case existing
        case absolutePaths = "absolute-paths"
    }

    let mode: Mode
    let path: String
    let nbdServer: [String: OptionValue]?
    let nbdExport: String
    let format: String
    let nodeName: String?
    let size: Int64
    let backingFile: String?
    let backingFormat: String?
    /// The node the target gets as backing when the job completes (absolute-paths only).
    let backingNodeOnCompletion: BlockNode?

    init(_ arguments: QmpArguments, source: BlockNode, sync: MirrorSyncMode) throws(QmpError) {
        let target = arguments.string("target")!
        mode = arguments.string("mode").flatMap(Mode.init) ?? .absolutePaths
        nodeName = arguments.string("node-name")
        size = source.driver.length
        path = target
        if let (server, export) = Self.parseNbd(target) {
            nbdServer = server
            nbdExport = export
            guard mode == .existing else { throw QmpError("drive-mirror to an NBD target needs mode 'existing'") }
        } else {
            nbdServer = nil
            nbdExport = ""
        }
        let sourceFormat = Self.formatName(of: source)
        format = arguments.string("format") ?? (mode == .existing ? Self.probe(target, nbd: nbdServer != nil) : sourceFormat)
        guard format == "raw" || format == "qcow2" else { throw QmpError("Unknown file format '\(format)'") }
        if arguments.string("replaces") != nil && nodeName == nil {
            throw QmpError("a node-name must be provided when replacing a named node of the graph")
        }
        var backing: BlockNode?
        if mode == .absolutePaths && format == "qcow2" {
            switch sync {
            case .top: backing = source.backing
            case .none: backing = source
            case .full: backing = nil
            }
        }
        backingNodeOnCompletion = backing
        backingFile = backing?.filename
        backingFormat = backing.map(Self.formatName)
    }

    /// Creates the image in absolute-paths mode (bdrv_img_create); `existing` opens what is there.
    func createImage() throws(BlockError) {
        guard mode == .absolutePaths else { return }
        try MirrorTargetImage.create(path: path, format: format, size: size, backingFile: backingFile, backingFormat: backingFormat)
    }

    /// The target node's options: the format over a file or an NBD client; a new qcow2 image's
    /// backing is attached at completion, not opened now.
    func blockdevOptions(nodeName: String?) -> [String: OptionValue] {
        var protocolNode: [String: OptionValue]
        if let nbdServer {
            protocolNode = ["driver": .string("nbd"), "server": .object(nbdServer)]
            if !nbdExport.isEmpty { protocolNode["export"] = .string(nbdExport) }
        } else {
            protocolNode = ["driver": .string("file"), "filename": .string(path)]
        }
        var options: [String: OptionValue] = ["driver": .string(format), "file": .object(protocolNode)]
        if let nodeName { options["node-name"] = .string(nodeName) }
        if format == "qcow2" && mode == .absolutePaths { options["backing"] = .null }
        return options
    }

    /// The format below any filter: what `format` defaults to for a new image.
    private static func formatName(of node: BlockNode) -> String {
        var current = node
        while current.driver.isFilter, current.driverName != "raw", let below = current.filterOrCowChild { current = below }
        return current.driverName == "qcow2" ? "qcow2" : "raw"
    }

    /// Format probing (bdrv_probe_all) for the two formats svmm opens: qcow2's magic, else raw.
    private static func probe(_ path: String, nbd: Bool) -> String {
        guard !nbd else { return "raw" }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "raw" }
        defer { close(fd) }
        var magic: [UInt8] = [0, 0, 0, 0]
        let count = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4, 0) }
        return count == 4 && magic == [0x51, 0x46, 0x49, 0xfb] ? "qcow2" : "raw"
    }

    /// The NBD URI forms QEMU's nbd driver parses (nbd_parse_uri and the legacy `nbd:` syntax).
    static func parseNbd(_ target: String) -> ([String: OptionValue], String)? {
        if target.hasPrefix("nbd+unix://") {
            let rest = target.dropFirst("nbd+unix://".count)
            let parts = rest.split(separator: "?", maxSplits: 1).map(String.init)
            let export = parts.first.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
            guard parts.count == 2, parts[1].hasPrefix("socket=") else { return nil }
            return (["type": .string("unix"), "path": .string(String(parts[1].dropFirst("socket=".count)))], export)
        }
        if target.hasPrefix("nbd://") {
            let rest = target.dropFirst("nbd://".count)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let hostPort = rest[..<slash].split(separator: ":", maxSplits: 1).map(String.init)
            let export = slash < rest.endIndex ? String(rest[rest.index(after: slash)...]) : ""
            guard let host = hostPort.first else { return nil }
            return (["type": .string("inet"), "host": .string(host), "port": .string(hostPort.count > 1 ? hostPort[1] : "10809")], export)
        }
        guard target.hasPrefix("nbd:") else { return nil }
        var fields = target.dropFirst("nbd:".count).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var export = ""
        if let last = fields.last, last.hasPrefix("exportname=") {
            export = String(last.dropFirst("exportname=".count))
            fields.removeLast()
        }
        if fields.first == "unix", fields.count == 2 { return (["type": .string("unix"), "path": .string(fields[1])], export) }
        guard fields.count == 2 else { return nil }
        return (["type": .string("inet"), "host": .string(fields[0]), "port": .string(fields[1])], export)
    }
}
