extension SocketAddress {
    /// From `-blockdev`/`blockdev-add` options (`server.type=unix,server.path=…`), as QAPI's visitor reads them.
    init(reader: inout OptionReader) throws(BlockError) {
        switch try reader.enumeration("type", ["inet", "unix"]) {
        case "inet": self = .inet(host: try reader.requiredString("host"), port: try Self.port(&reader))
        case "unix": self = .unix(path: try reader.requiredString("path"))
        default: throw BlockError("Parameter '\(reader.path("type"))' is missing")
        }
        try reader.finish()
        // QEMU keeps a QMP "\u0000" in the name (as modified UTF-8) and finds nothing by it; a C
        // string would end at the NUL and reach another socket, so svmm answers as QEMU does.
        switch self {
        case .unix(let path) where path.utf8.contains(0):
            throw BlockError("Failed to connect to '\(path)': No such file or directory")
        case .inet(let host, let port) where host.utf8.contains(0) || port.utf8.contains(0):
            throw BlockError("address resolution failed for \(host):\(port): Name or service not known")
        default: break
        }
    }

    /// Ports are strings in QAPI; a JSON number is accepted too.
    private static func port(_ reader: inout OptionReader) throws(BlockError) -> String {
        switch reader.raw("port") {
        case .string(let text)?: return text
        case .int(let number)?: return String(number)
        case nil: throw BlockError("Parameter '\(reader.path("port"))' is missing")
        default: throw BlockError("Invalid parameter type for '\(reader.path("port"))', expected: string")
        }
    }
}
