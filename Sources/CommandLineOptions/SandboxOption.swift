import Sandbox

/// `-sandbox on|off[,obsolete=..][,elevateprivileges=..][,spawn=..][,resourcecontrol=..]`, as
/// QEMU 7.2 reads it: QemuOpts with `enable` implied (a bad key is "Invalid parameter"), then
/// parse_sandbox, which reads the groups only when `enable` is on, in this order.
enum SandboxOption {
    static let keys: Set<String> = ["enable", "obsolete", "elevateprivileges", "spawn", "resourcecontrol"]

    static func parse(_ argument: String) throws(CommandLineError) -> SandboxOptions {
        // An empty argument is an empty QemuOpts: `enable` unset, the sandbox off.
        guard !argument.isEmpty else { return SandboxOptions() }
        let options = try OptionList(argument, impliedKey: "enable")
        try options.checkKeys(keys) { "Invalid parameter '\($0)'" }
        var sandbox = SandboxOptions()
        sandbox.enabled = try options.bool("enable") ?? false
        guard sandbox.enabled else { return sandbox }
        sandbox.obsolete = try choice(options, "obsolete") ?? .deny
        sandbox.elevatePrivileges = try choice(options, "elevateprivileges") ?? .allow
        sandbox.spawn = try choice(options, "spawn") ?? .allow
        sandbox.resourceControl = try choice(options, "resourcecontrol") ?? .allow
        return sandbox
    }

    private static func choice<Value: RawRepresentable>(_ options: OptionList, _ key: String) throws(CommandLineError) -> Value?
        where Value.RawValue == String {
        guard let text = options.value(key) else { return nil }
        guard let value = Value(rawValue: text) else { throw CommandLineError("invalid argument for \(key)") }
        return value
    }
}
