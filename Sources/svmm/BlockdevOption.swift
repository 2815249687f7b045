import Block
import Machine

/// `-blockdev driver=file,node-name=N,filename=F[,read-only=on][,cache.direct=on|off][,aio=native|threads]`.
enum BlockdevOption {
    static let fileKeys: Set<String> = ["driver", "node-name", "filename", "read-only", "cache.direct", "aio", "cache.no-flush", "discard", "auto-read-only"]

    static func parse(_ argument: String) throws(CommandLineError) -> MachineConfig.BlockNodeConfig {
        let options = try OptionList(argument)
        guard let driver = options.value("driver") else { throw CommandLineError("Parameter 'driver' is missing") }
        guard driver == "file" else { throw CommandLineError("Parameter 'driver' does not accept value '\(driver)'") }
        try options.checkKeys(fileKeys)
        guard let filename = options.value("filename") else { throw CommandLineError("Parameter 'filename' is missing") }
        guard let nodeName = options.value("node-name") else {
            throw CommandLineError("'node-name' must be specified for the root node")
        }
        var file = FileOptions(filename: filename)
        file.readOnly = try options.bool("read-only") ?? false
        file.directIO = try options.bool("cache.direct") ?? true
        if let aio = options.value("aio") {
            guard let mode = FileOptions.AioMode(rawValue: aio) else {
                throw CommandLineError("Parameter 'aio' does not accept value '\(aio)'")
            }
            file.aio = mode
        } else {
            file.aio = file.directIO ? .native : .threads
        }
        if file.aio == .native && !file.directIO {
            throw CommandLineError("aio=native was specified, but it requires cache.direct=on, which was not specified.")
        }
        return .init(nodeName: nodeName, file: file, source: argument)
    }
}
