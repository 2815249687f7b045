import Glibc

/// `driver=blkdebug` options (QEMU 7.2's BlockdevOptionsBlkdebug, the subset svmm implements):
/// the filtered `image`, a `config` file, and `inject-error` / `set-state` rules.
public struct BlkdebugOptions: Sendable {
    public var image: BlockdevOptions.Reference
    /// A config file read when the node opens (blkdebug_open → read_config); its rules come first.
    public var config: String?
    /// The rules given as options, in order.
    public var rules: [BlkdebugRule]

    public init(image: BlockdevOptions.Reference, config: String? = nil, rules: [BlkdebugRule] = []) {
        self.image = image
        self.config = config
        self.rules = rules
    }

    /// Options QEMU has that svmm does not implement: refused by name rather than accepted and ignored.
    static let unimplemented = ["align", "max-transfer", "opt-write-zero", "max-write-zero", "opt-discard",
                                "max-discard", "take-child-perms", "unshare-child-perms"]

    init(reader: inout OptionReader, image: BlockdevOptions.Reference) throws(BlockError) {
        self.image = image
        config = try reader.string("config")
        for key in Self.unimplemented where reader.raw(key) != nil {
            throw BlockError("blkdebug option '\(reader.path(key))' is not supported by svmm")
        }
        var rules: [BlkdebugRule] = []
        for var element in try Self.list(&reader, "inject-error") {
            rules.append(try Self.injectError(&element))
        }
        for var element in try Self.list(&reader, "set-state") {
            rules.append(try Self.setState(&element))
        }
        self.rules = rules
    }

    /// A QAPI list: a JSON array from QMP, `key.0.…`, `key.1.…` from the command line (keyval).
    private static func list(_ reader: inout OptionReader, _ key: String) throws(BlockError) -> [OptionReader] {
        let path = reader.path(key)
        switch reader.raw(key) {
        case nil: return []
        case .array(let elements):
            var readers: [OptionReader] = []
            for (index, element) in elements.enumerated() {
                guard case .object(let fields) = element else {
                    throw BlockError("Invalid parameter type for '\(path)[\(index)]', expected: object")
                }
                readers.append(OptionReader(fields, prefix: "\(path)[\(index)].", fromCommandLine: reader.isCommandLine))
            }
            return readers
        case .object(let fields) where reader.isCommandLine:
            // keyval_listify: the keys must be 0, 1, 2, … with none missing.
            var readers: [OptionReader] = []
            for index in 0..<fields.count {
                guard case .object(let element)? = fields["\(index)"] else {
                    throw BlockError("Parameter '\(path).\(index)' is missing")
                }
                readers.append(OptionReader(element, prefix: "\(path).\(index).", fromCommandLine: true))
            }
            return readers
        default:
            throw BlockError("Invalid parameter type for '\(path)', expected: array")
        }
    }

    /// BlkdebugInjectErrorOptions.
    private static func injectError(_ reader: inout OptionReader) throws(BlockError) -> BlkdebugRule {
        let event = try event(&reader)
        let state = try reader.int("state") ?? 0
        let ioType = try enumValue(&reader, "iotype", BlkdebugIoType.self)
        let errno = try errnoValue(&reader)
        let sector = try reader.int("sector")
        let once = try reader.bool("once") ?? false
        let immediately = try reader.bool("immediately") ?? false
        try reader.finish()
        return .injectError(event, state: state, errno: errno, sector: sector, ioType: ioType, once: once, immediately: immediately)
    }

    /// BlkdebugSetStateOptions.
    private static func setState(_ reader: inout OptionReader) throws(BlockError) -> BlkdebugRule {
        let event = try event(&reader)
        let state = try reader.int("state") ?? 0
        guard let newState = try reader.int("new_state") else { throw BlockError("Parameter '\(reader.path("new_state"))' is missing") }
        try reader.finish()
        return .setState(event, state: state, newState: newState)
    }

    private static func event(_ reader: inout OptionReader) throws(BlockError) -> BlkdebugEvent {
        guard let event = try enumValue(&reader, "event", BlkdebugEvent.self) else {
            throw BlockError("Parameter '\(reader.path("event"))' is missing")
        }
        return event
    }

    /// QAPI's enum check; QEMU names the member without its list path here.
    private static func enumValue<T: RawRepresentable>(_ reader: inout OptionReader, _ key: String, _ type: T.Type) throws(BlockError) -> T?
        where T.RawValue == String {
        guard let text = try reader.string(key) else { return nil }
        guard let value = T(rawValue: text) else { throw BlockError("Parameter '\(key)' does not accept value '\(text)'") }
        return value
    }

    private static func errnoValue(_ reader: inout OptionReader) throws(BlockError) -> Int32 {
        guard let number = try reader.int("errno") else { return EIO }
        guard let code = Int32(exactly: number), code >= 0 else {
            throw BlockError("Parameter '\(reader.path("errno"))' expects an errno between 0 and \(Int32.max)")
        }
        return code
    }
}
