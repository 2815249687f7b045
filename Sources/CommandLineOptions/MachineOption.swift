import Machine

/// `-machine TYPE[,accel=A]` / `-M`, `-accel A` and `-vga TYPE`, with QEMU 7.2's error texts.
enum MachineOption {
    static func parseMachine(_ argument: String, into config: inout MachineConfig) throws(CommandLineError) {
        let options = try OptionList(argument, impliedKey: "type")
        if let bad = options.pairs.first(where: { !["type", "accel"].contains($0.key) }) {
            throw CommandLineError("Property '\(config.machineType.rawValue)-machine.\(bad.key)' not found")
        }
        if let type = options.value("type") {
            guard let machine = MachineConfig.MachineType(rawValue: type) else {
                throw CommandLineError("unsupported machine type\nUse -machine help to list supported machines", option: "")
            }
            config.machineType = machine
        }
        // accel=kvm:tcg is a list of choices; the first that svmm has wins, as QEMU's does.
        if let accel = options.value("accel") {
            let choices = accel.split(separator: ":").map(String.init)
            guard let chosen = choices.lazy.compactMap(MachineConfig.Accelerator.init(rawValue:)).first else {
                throw CommandLineError("invalid accelerator \(choices.first ?? accel)", option: "")
            }
            config.accelerator = chosen
        }
    }

    static func parseAccel(_ argument: String) throws(CommandLineError) -> MachineConfig.Accelerator {
        let options = try OptionList(argument, impliedKey: "accel")
        try options.checkKeys(["accel"]) { "Invalid parameter '\($0)'" }
        let name = options.value("accel") ?? ""
        guard let accelerator = MachineConfig.Accelerator(rawValue: name) else {
            throw CommandLineError("invalid accelerator \(name)")
        }
        return accelerator
    }

    /// svmm's machines have no VGA: `none` is exactly that; QEMU microvm warns about the others.
    static func parseVga(_ argument: String) throws(CommandLineError) -> String? {
        let known = ["std", "cirrus", "vmware", "qxl", "xenfb", "tcx", "cg3", "virtio", "none"]
        guard known.contains(argument) else { throw CommandLineError("unknown vga type: \(argument)", option: "") }
        if argument == "none" { return nil }
        return "warning: A -vga option was passed but this machine type does not use that option; No VGA device has been created"
    }
}
