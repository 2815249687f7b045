import Block
import CommandLineOptions
import Devices
import Machine
import Migration
import NBD
import QMP

/// Every parser of outside input that `make fuzz` fuzzes, by the name its corpus folder
/// (`Tests/fuzz-corpus/<name>/`) and `FUZZ_TARGET` use. The libFuzzer binary and the corpus
/// replay test both call `run`, so a crash the fuzzer found replays in a plain `swift test`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case elf
    case options
    case qmp
    case nbdServer = "nbd-server"
    case nbdClient = "nbd-client"
    case qcow2
    case virtio
    case migrationStream = "migration-stream"
    case state

    /// Feeds one input to the target's entry; an input that traps is a bug in that parser.
    public func run(_ data: [UInt8]) {
        switch self {
        case .elf: ElfFuzzEntry.fuzz(data)
        case .options: CommandLineFuzzEntry.fuzz(data)
        case .qmp: QmpFuzzEntry.fuzz(data)
        case .nbdServer: NbdServerFuzzEntry.fuzz(data)
        case .nbdClient: NbdClientFuzzEntry.fuzz(data)
        case .qcow2: Qcow2FuzzEntry.fuzz(data)
        case .virtio: VirtioFuzzEntry.fuzz(data)
        case .migrationStream: MigrationStreamFuzzEntry.fuzz(data)
        case .state: StateFuzzEntry.fuzz(data)
        }
    }
}
