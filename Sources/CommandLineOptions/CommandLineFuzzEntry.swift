/// The command line's fuzz entry (`make fuzz`, target `options`): the input as the argument of
/// each option that parses a string, and, cut at newlines, as a whole argument vector.
public enum CommandLineFuzzEntry {
    static let optionsWithText = ["-m", "-smp", "-blockdev", "-drive", "-device", "-qmp", "-chardev", "-mon", "-name", "-serial", "-display",
                                  "-machine", "-accel", "-vga", "-qtest", "-object"]

    /// Never traps: every bad option is a `CommandLineError`. Nothing is opened: parsing only
    /// records paths and addresses in the `MachineConfig`.
    public static func fuzz(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        for option in optionsWithText { _ = try? CommandLineParser.parse([option, text]) }
        _ = try? OptionList(text, keyval: true)
        _ = try? OptionList(text, impliedKey: "driver")
        // Drives first, so a `-device ...,drive=ID` line can find one.
        _ = try? CommandLineParser.parse(["-drive", "file=x,if=none,id=d0", "-blockdev", "driver=null-co,node-name=n0"]
                                         + text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }
}
