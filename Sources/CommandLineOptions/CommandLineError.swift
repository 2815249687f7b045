/// A command-line problem: printed as `svmm: <option>: <message>`, exit status 1, as QEMU does
/// (an empty `option` for the errors QEMU prints without one).
public struct CommandLineError: Error {
    var option: String?
    let message: String

    init(_ message: String, option: String? = nil) {
        self.message = message
        self.option = option
    }

    public var line: String {
        if let option, !option.isEmpty { return "\(ProgramName.basename): \(option): \(message)" }
        return "\(ProgramName.basename): \(message)"
    }
}
