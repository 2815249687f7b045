import Block
import Devices
import Machine

/// Turns QEMU-shaped arguments (`-m 512 -kernel guest.elf -blockdev ... -device ...`) into a
/// `MachineConfig`. Each problem is one `CommandLineError` naming the option, as QEMU reports it.
public struct CommandLineParser {
    /// Options and whether they take an argument.
    static let options: [String: Bool] = [
        "m": true, "smp": true, "kernel": true, "append": true, "blockdev": true, "drive": true, "device": true,
        "serial": true, "display": true, "name": true, "nographic": false, "nodefaults": false, "S": false,
        "no-user-config": false, "enable-kvm": false, "qmp": true, "chardev": true, "mon": true,
        "version": false, "help": false, "h": false, "incoming": true,
        "machine": true, "M": true, "accel": true, "vga": true, "qtest": true, "object": true,
        "sandbox": true,
    ]

    private(set) var config = MachineConfig()
    private var chardevs: [String: ChardevSocket] = [:]
    private var debugExitSeen = false
    /// Lines QEMU prints as `warning: ...` and goes on (`-vga std` on a machine without VGA).
    private var warnings: [String] = []

    public static func parse(_ arguments: [String]) throws(CommandLineError) -> CommandLineRequest {
        var warnings: [String] = []
        return try parse(arguments, warnings: &warnings)
    }

    public static func parse(_ arguments: [String], warnings: inout [String]) throws(CommandLineError) -> CommandLineRequest {
        var parser = CommandLineParser()
        var remaining = arguments[...]
        while let word = remaining.popFirst() {
            guard word.hasPrefix("-") else { throw CommandLineError("invalid argument '\(word)'") }
            let name = String(word.drop { $0 == "-" })
            guard let takesArgument = options[name] else { throw CommandLineError("invalid option", option: word) }
            if name == "version" { return .version }
            if name == "help" || name == "h" { return .help }
            var argument = ""
            if takesArgument {
                guard let next = remaining.popFirst() else { throw CommandLineError("requires an argument", option: word) }
                argument = next
            }
            if let text = Self.helpText(name, argument) { return .information(text) }
            do {
                try parser.apply(name, argument)
            } catch {
                throw CommandLineError(error.message, option: error.option ?? (takesArgument ? "\(word) \(argument)" : word))
            }
        }
        try parser.checkMachineHasBuses()
        warnings += parser.warnings.map { "\(ProgramName.basename): \($0)" }
        return .run(parser.config)
    }

    /// `-machine help`, `-drive format=help`, `-device help` (QEMU answers them and exits 0).
    private static func helpText(_ name: String, _ argument: String) -> String? {
        switch name {
        case "machine", "M": (try? OptionList(argument, impliedKey: "type"))?.value("type") == "help" ? HelpText.machines : nil
        case "drive": (try? OptionList(argument))?.value("format") == "help" ? HelpText.formats : nil
        case "device": (try? OptionList(argument, impliedKey: "driver"))?.value("driver") == "help" ? HelpText.devices : nil
        default: nil
        }
    }

    /// QEMU's `none` machine has no buses: a virtio-blk device finds no virtio-bus there.
    private func checkMachineHasBuses() throws(CommandLineError) {
        guard config.machineType == .none, let device = config.virtioBlkDevices.first else { return }
        throw CommandLineError("No 'virtio-bus' bus found for device 'virtio-blk-device'",
                               option: "\(device.option) \(device.source)")
    }

    private mutating func apply(_ name: String, _ argument: String) throws(CommandLineError) {
        switch name {
        case "m": try parseMemory(argument)
        case "smp": try parseSmp(argument)
        case "kernel": config.kernel = argument
        case "append": config.append = argument
        case "blockdev": config.blockdevs.append(try BlockdevOption.parse(argument))
        case "drive": try addDrive(argument)
        case "device": try parseDevice(argument)
        case "serial": config.serial = try parseSerial(argument)
        case "display": guard argument == "none" else { throw CommandLineError("Parameter 'type' does not accept value '\(argument)'") }
        case "name": config.name = try OptionList(argument, impliedKey: "guest").value("guest")
        case "nographic": break  // there is no graphics: serial already goes to stdio
        case "nodefaults": break  // the only default device is the debug-exit port, which tests rely on
        case "S": config.startPaused = true
        case "qmp": config.qmpAddresses.append(try MonitorOption.parseQmp(argument))
        case "chardev":
            let (id, socket) = try ChardevSocket.parse(argument)
            chardevs[id] = socket
        case "mon":
            switch try MonitorOption.parseMon(argument, chardevs: chardevs) {
            case .listening(let address): config.qmpAddresses.append(address)
            case .client(let client): config.qmpClients.append(client)
            }
        case "incoming": config.incoming = argument  // checked when the machine starts listening
        case "machine", "M": try MachineOption.parseMachine(argument, into: &config)
        case "accel": config.accelerator = try MachineOption.parseAccel(argument)
        case "enable-kvm": config.accelerator = .kvm
        case "vga": if let warning = try MachineOption.parseVga(argument) { warnings.append(warning) }
        case "qtest": config.qtest = try QtestOption.parse(argument, chardevs: chardevs)
        case "object": config.iothreads.append(try ObjectOption.parse(argument, existing: config.iothreads))
        case "sandbox": config.sandbox = try SandboxOption.parse(argument)
        default: break  // accepted for compatibility, no effect here
        }
    }

    private mutating func parseMemory(_ argument: String) throws(CommandLineError) {
        let options = try OptionList(argument, impliedKey: "size")
        try options.checkKeys(["size"])
        let text = options.value("size") ?? ""
        do {
            config.memorySize = try SizeValue.parse(text, defaultUnit: 1 << 20)
        } catch .malformed {
            throw CommandLineError("Parameter 'size' expects a non-negative number below 2^64")
        } catch {
            throw CommandLineError("Value '\(text)' is out of range for parameter 'size'")
        }
    }

    private func parseSmp(_ argument: String) throws(CommandLineError) {
        let options = try OptionList(argument, impliedKey: "cpus")
        try options.checkKeys(["cpus", "maxcpus", "sockets", "cores", "threads"])
        for key in ["cpus", "maxcpus", "sockets", "cores", "threads"] {
            guard let text = options.value(key) else { continue }
            guard let count = Int(text) else { throw CommandLineError("Parameter 'smp.\(key)' expects integer", option: "") }
            guard count == 1 else { throw CommandLineError("only one vCPU is supported (smp.\(key)=\(count))") }
        }
    }

    private func parseSerial(_ argument: String) throws(CommandLineError) -> MachineConfig.SerialOutput {
        switch argument {
        case "stdio", "mon:stdio": return .stdio
        case "none", "null": return .none
        default:
            if argument.hasPrefix("file:"), argument.count > 5 { return .file(String(argument.dropFirst(5))) }
            throw CommandLineError("'\(argument)' is not a valid char driver")
        }
    }

    private mutating func parseDevice(_ argument: String) throws(CommandLineError) {
        let options = try OptionList(argument, impliedKey: "driver")
        switch options.value("driver") {
        case "virtio-blk-device", "virtio-blk":  // svmm's alias, as QEMU's virtio-blk names its bus's device
            // QEMU microvm (without ioapic2, the layout svmm has) makes 8 virtio-mmio transports on
            // IRQs 5-12; qdev_device_add looks for a free bus before it reads any property.
            guard config.virtioBlkDevices.count < MemoryMap.virtioTransportCount else {
                throw CommandLineError("No 'virtio-bus' bus found for device 'virtio-blk-device'")
            }
            config.virtioBlkDevices.append(try parseVirtioBlk(options, source: argument))
        case "isa-debug-exit": try parseDebugExit(options)
        case let other: throw CommandLineError("'\(other ?? "")' is not a valid device model name")
        }
    }

    /// `-drive`: a node and a BlockBackend named by its id; `if=virtio` also makes a virtio-blk
    /// device on it (drive_new + the board's default device, QEMU's `-drive if=virtio`).
    private mutating func addDrive(_ argument: String) throws(CommandLineError) {
        let drive = try DriveOption.parse(argument)
        config.drives.append(drive.drive)
        guard drive.virtio else { return }
        guard config.virtioBlkDevices.count < MemoryMap.virtioTransportCount else {
            throw CommandLineError("No 'virtio-bus' bus found for device 'virtio-blk-device'")
        }
        var device = MachineConfig.VirtioBlkConfig(drive: drive.drive.id, source: argument)
        device.option = "-drive"
        config.virtioBlkDevices.append(device)
    }

    private func parseVirtioBlk(_ options: OptionList, source: String) throws(CommandLineError) -> MachineConfig.VirtioBlkConfig {
        try options.checkKeys(["driver", "drive", "id", "serial", "share-rw", "werror", "rerror", "iothread"]) { "Property 'virtio-blk-device.\($0)' not found" }
        guard let drive = options.value("drive") else { throw CommandLineError("Property 'virtio-blk-device.drive' is missing") }
        guard config.hasDrive(drive) else {
            throw CommandLineError("Property 'virtio-blk-device.drive' can't find value '\(drive)'")
        }
        var device = MachineConfig.VirtioBlkConfig(drive: drive, source: source)
        device.id = options.value("id")
        device.serial = options.value("serial") ?? ""
        device.shareRW = try options.bool("share-rw") ?? false
        device.iothread = options.value("iothread")  // checked against the -object list once all are read
        // DEFINE_BLOCK_ERROR_PROPERTIES: any BlockdevOnError, `auto` (the default) keeps the drive's.
        for (key, isRead) in [("werror", false), ("rerror", true)] {
            guard let text = options.value(key) else { continue }
            guard let policy = JobErrorPolicy(rawValue: text) else {
                throw CommandLineError("Parameter '\(key)' does not accept value '\(text)'")
            }
            if isRead { device.readErrorPolicy = policy } else { device.writeErrorPolicy = policy }
        }
        return device
    }

    private mutating func parseDebugExit(_ options: OptionList) throws(CommandLineError) {
        try options.checkKeys(["driver", "iobase", "iosize", "id"]) { "Property 'isa-debug-exit.\($0)' not found" }
        if let size = options.value("iosize"), size != "1", size != "0x1" {
            throw CommandLineError("Property 'isa-debug-exit.iosize' only supports 1 here")
        }
        let text = options.value("iobase") ?? "0x501"
        let port = text.hasPrefix("0x") ? UInt16(text.dropFirst(2), radix: 16) : UInt16(text)
        guard let port else { throw CommandLineError("Property 'isa-debug-exit.iobase' doesn't take value '\(text)'") }
        config.debugExitPort = port
    }
}
