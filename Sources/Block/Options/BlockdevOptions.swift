import Glibc

/// `-blockdev` / `blockdev-add` options for the drivers svmm has, parsed and checked.
public struct BlockdevOptions: Sendable {
    /// Where a child comes from: an existing node, options for a new one, or explicitly none.
    public indirect enum Reference: Sendable {
        case node(String)
        case options(BlockdevOptions)
        case none
    }

    public enum Driver: Sendable {
        case file(FileOptions)
        case raw(file: Reference, offset: Int64, size: Int64?)
        case qcow2(file: Reference, backing: Reference?)
        case nullCo(size: Int64, readZeroes: Bool)
        case nbd(NbdClientOptions)
        case blkdebug(BlkdebugOptions)
    }

    public static let driverNames = ["file", "raw", "qcow2", "null-co", "nbd", "blkdebug"]

    /// QEMU's BDRV_MAX_LENGTH: INT64_MAX aligned down to BDRV_MAX_ALIGNMENT (1 GiB).
    public static let maxLength: Int64 = Int64.max & ~((1 << 30) - 1)

    public var nodeName: String?
    public var driver: Driver
    public var readOnly: Bool?
    public var autoReadOnly = false
    public var forceShare = false
    /// `discard=unmap|ignore` (QEMU's BDRV_O_UNMAP); nil inherits the parent's, and ignore is the default.
    public var discardUnmap: Bool?

    public var driverName: String {
        switch driver {
        case .file: "file"
        case .raw: "raw"
        case .qcow2: "qcow2"
        case .nullCo: "null-co"
        case .nbd: "nbd"
        case .blkdebug: "blkdebug"
        }
    }

    public init(nodeName: String?, driver: Driver) {
        self.nodeName = nodeName
        self.driver = driver
    }

    /// Parses an option object; `fromCommandLine` for `-blockdev` strings, false for QMP JSON.
    public init(_ values: [String: OptionValue], fromCommandLine: Bool) throws(BlockError) {
        var reader = OptionReader(values, fromCommandLine: fromCommandLine)
        try self.init(reader: &reader)
    }

    init(reader: inout OptionReader) throws(BlockError) {
        let name = try reader.requiredString("driver")
        guard Self.driverNames.contains(name) else {
            throw BlockError("Parameter '\(reader.path("driver"))' does not accept value '\(name)'")
        }
        nodeName = try reader.string("node-name")
        readOnly = try reader.bool("read-only")
        autoReadOnly = try reader.bool("auto-read-only") ?? false
        forceShare = try reader.bool("force-share") ?? false
        discardUnmap = try reader.enumeration("discard", ["ignore", "unmap", "off", "on"]).map { $0 == "unmap" || $0 == "on" }
        _ = try reader.enumeration("detect-zeroes", ["off", "on", "unmap"])
        var cache = try reader.object("cache")
        let direct = try cache?.bool("direct")
        _ = try cache?.bool("no-flush")
        try cache?.finish()
        switch name {
        case "file": driver = .file(try Self.fileOptions(&reader, direct: direct, readOnly: readOnly ?? false))
        case "raw":
            let file = try Self.reference(&reader, "file", required: true)!
            let offset = try reader.nonNegativeInt("offset") ?? 0
            let size = try reader.nonNegativeInt("size")
            // No file is longer than INT64_MAX, so a sum beyond it is always too large; refused
            // here before anything adds the two (raw_apply_options names the file's size too,
            // which only the opened child knows).
            if let size, offset.addingReportingOverflow(size).overflow {
                throw BlockError("The sum of offset (\(offset)) and size (\(size)) has to be smaller or equal to the  actual size of the containing file")
            }
            driver = .raw(file: file, offset: offset, size: size)
        case "qcow2":
            driver = .qcow2(file: try Self.reference(&reader, "file", required: true)!,
                            backing: try Self.reference(&reader, "backing", required: false))
        case "nbd":
            driver = .nbd(try NbdClientOptions(reader: &reader))
        case "blkdebug":
            let image = try Self.reference(&reader, "image", required: true)!
            driver = .blkdebug(try BlkdebugOptions(reader: &reader, image: image))
        default:
            let size = try reader.nonNegativeInt("size") ?? 1 << 30
            // bdrv_refresh_total_sectors: a node may not be longer than BDRV_MAX_LENGTH.
            if size > Self.maxLength { throw BlockError("Could not refresh total sector count: File too large") }
            driver = .nullCo(size: size, readZeroes: try reader.bool("read-zeroes") ?? false)
        }
        try reader.finish()
        if let nodeName { try Self.checkNodeName(nodeName) }
    }

    /// bdrv_assign_node_name's checks of the name itself (duplicates are the graph's to find).
    static func checkNodeName(_ name: String) throws(BlockError) {
        guard isWellFormedID(name) else { throw BlockError("Invalid node-name: '\(name)'") }
        // BlockDriverState.node_name is 32 bytes with its terminating NUL.
        if name.utf8.count >= 32 { throw BlockError("Node name too long") }
    }

    /// QEMU's id_wellformed: a letter, then letters, digits, '-', '.' and '_' (ASCII only).
    public static func isWellFormedID(_ id: String) -> Bool {
        func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte) }
        guard let first = id.utf8.first, isLetter(first) else { return false }
        return id.utf8.dropFirst().allSatisfy { isLetter($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x2e || $0 == 0x5f }
    }

    private static func fileOptions(_ reader: inout OptionReader, direct: Bool?, readOnly: Bool) throws(BlockError) -> FileOptions {
        let filename = try reader.requiredString("filename")
        // QEMU keeps a QMP "\u0000" inside the name (as modified UTF-8 \xC0\x80) and finds no such
        // file; a C path would end at the NUL and open another one, so svmm answers as QEMU does.
        if filename.utf8.contains(0) { throw BlockError("Could not open '\(filename)': No such file or directory", errno: ENOENT) }
        var file = FileOptions(filename: filename)
        file.readOnly = readOnly
        file.directIO = direct ?? true
        if let aio = try reader.enumeration("aio", ["native", "threads", "io_uring"]) {
            guard let mode = FileOptions.AioMode(rawValue: aio) else {
                throw BlockError("aio=io_uring is not supported by svmm; use aio=native or aio=threads")
            }
            file.aio = mode
        } else {
            file.aio = file.directIO ? .native : .threads
        }
        if file.aio == .native && !file.directIO {
            throw BlockError("aio=native was specified, but it requires cache.direct=on, which was not specified.")
        }
        file.locking = try reader.enumeration("locking", ["on", "off", "auto"]) != "off"
        return file
    }

    /// A child given by node name (string), by nested options (object), or `null` for none.
    private static func reference(_ reader: inout OptionReader, _ key: String, required: Bool) throws(BlockError) -> Reference? {
        switch reader.raw(key) {
        case nil:
            if required { throw BlockError("Parameter '\(reader.path(key))' is missing") }
            return nil
        case .null: return Reference.none
        // On the command line, `backing=` and `backing=null` mean no backing.
        case .string(let name) where reader.isCommandLine && (name.isEmpty || name == "null"): return Reference.none
        case .string(let name): return .node(name)
        case .object(let fields):
            var child = OptionReader(fields, prefix: reader.path(key) + ".", fromCommandLine: reader.isCommandLine)
            return .options(try BlockdevOptions(reader: &child))
        default:
            throw BlockError("Invalid parameter type for '\(reader.path(key))', expected: BlockdevRef")
        }
    }
}
