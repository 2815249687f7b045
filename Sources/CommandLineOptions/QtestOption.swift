import Block
import Machine

/// `-qtest unix:path=Q` / `-qtest unix:Q` / `-qtest chardev:ID`: the qtest protocol's socket,
/// connected to (the harness listens). svmm serves no qtest command; the iotests send none.
/// `source` is the argument itself (QEMU names it in the error when the connection fails).
enum QtestOption {
    static func parse(_ argument: String, chardevs: [String: ChardevSocket]) throws(CommandLineError) -> MachineConfig.ChardevClient {
        let failure = CommandLineError("Failed to initialize device for qtest: \"\(argument)\"", option: "")
        if argument.hasPrefix("chardev:") {
            guard case .client(let client)? = chardevs[String(argument.dropFirst(8))] else { throw failure }
            return client
        }
        guard argument.hasPrefix("unix:") else {
            throw CommandLineError("'\(argument)' is not a valid char driver\n\(ProgramName.basename): \(failure.message)", option: "")
        }
        // qemu_chr_parse_compat: `unix:` is followed by QemuOpts with `path` implied.
        let options = try OptionList(String(argument.dropFirst(5)), impliedKey: "path")
        try options.checkKeys(["path"])
        guard let path = options.value("path"), !path.isEmpty else { throw failure }
        return .init(connection: .connect(.unix(path: path)), source: argument)
    }
}
