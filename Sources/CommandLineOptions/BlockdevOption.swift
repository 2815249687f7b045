import Block
import Machine

/// `-blockdev` (QEMU's dotted keyval syntax); `-drive` is `DriveOption`.
enum BlockdevOption {
    static func parse(_ argument: String) throws(CommandLineError) -> MachineConfig.Blockdev {
        // keyval_parse(optarg, "driver", ...): `-blockdev file,node-name=...` names the driver first.
        let pairs = try OptionList(argument, impliedKey: "driver", keyval: true).pairs
        do {
            let tree = try OptionValue.fromDottedKeys(pairs)
            return .init(options: try BlockdevOptions(tree, fromCommandLine: true), source: argument)
        } catch {
            throw CommandLineError(error.description)
        }
    }
}
