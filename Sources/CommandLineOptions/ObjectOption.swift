import Machine

/// `-object iothread,id=ID`: the one QOM object type svmm knows. It is recorded; svmm runs
/// every node in its main loop, which is QEMU's semantic for an iothread no device uses.
enum ObjectOption {
    static func parse(_ argument: String) throws(CommandLineError) -> String {
        let options = try OptionList(argument, impliedKey: "qom-type")
        let type = options.value("qom-type") ?? ""
        guard type == "iothread" else { throw CommandLineError("Parameter 'qom-type' does not accept value '\(type)'") }
        guard let id = options.value("id") else { throw CommandLineError("Parameter 'id' is missing") }
        try options.checkKeys(["qom-type", "id"]) { "Invalid parameter '\($0)'" }
        return id
    }
}
