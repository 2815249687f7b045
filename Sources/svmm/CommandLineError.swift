/// A command-line problem: printed as `svmm: <option>: <message>`, exit status 1, as QEMU does.
struct CommandLineError: Error {
    var option: String?
    let message: String

    init(_ message: String, option: String? = nil) {
        self.message = message
        self.option = option
    }

    var line: String {
        if let option { return "\(Console.programName): \(option): \(message)" }
        return "\(Console.programName): \(message)"
    }
}
