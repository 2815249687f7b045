import Sandbox
import Block
import Devices

/// Everything the command line says about the machine to build.
public struct MachineConfig: Sendable {
    public enum SerialOutput: Equatable, Sendable {
        case stdio
        case file(String)
        case none
    }

    /// Each option remembers how the user wrote it, for error messages (`-blockdev <source>: ...`).
    public struct Blockdev: Sendable {
        public var options: BlockdevOptions
        public var source: String
        public init(options: BlockdevOptions, source: String) {
            self.options = options
            self.source = source
        }
    }

    /// `-drive ...,if=none,id=ID`: a node plus a BlockBackend named ID.
    public struct Drive: Sendable {
        public var id: String
        public var options: BlockdevOptions
        public var source: String
        /// `rerror=` / `werror=` (blockdev_init's defaults: report, enospc).
        public var readErrorPolicy: JobErrorPolicy = .report
        public var writeErrorPolicy: JobErrorPolicy = .enospc
        public init(id: String, options: BlockdevOptions, source: String) {
            self.id = id
            self.options = options
            self.source = source
        }
    }

    public struct VirtioBlkConfig: Sendable {
        public var drive: String
        public var id: String?
        public var serial = ""
        public var shareRW = false
        /// `rerror=` / `werror=` device properties; `auto` keeps the backend's.
        public var readErrorPolicy: JobErrorPolicy = .auto
        public var writeErrorPolicy: JobErrorPolicy = .auto
        public var source: String
        /// The option that made it, for errors: `-device`, or `-drive` for an `if=virtio` drive's device.
        public var option = "-device"
        /// `iothread=ID`: the `-object iothread` whose polling parameters the device's queue gets.
        public var iothread: String?
        public init(drive: String, source: String) {
            self.drive = drive
            self.source = source
        }
    }

    public var memorySize: UInt64 = 128 << 20
    public var kernel: String?
    public var append = ""
    public var blockdevs: [Blockdev] = []
    public var drives: [Drive] = []
    public var virtioBlkDevices: [VirtioBlkConfig] = []
    public var serial: SerialOutput = .stdio
    public var debugExitPort: UInt16? = DebugExit.defaultBase
    public var startPaused = false
    /// QMP sockets to listen on (`-qmp`, or `-chardev socket` + `-mon mode=control`).
    public var qmpAddresses: [SocketAddress] = []
    public var name: String?
    /// `-incoming URI` (or `defer`): the VM waits in run state `inmigrate` for a migration stream.
    public var incoming: String?
    /// `-accel` / `-machine accel=`; `-accel qtest` runs no guest code (see `Accelerator`).
    public var accelerator: Accelerator = .kvm
    public var machineType: MachineType = .microvm
    /// QMP monitors on sockets svmm connects to (`-chardev socket,path=P` without `server=on`, or `fd=N`).
    public var qmpClients: [ChardevClient] = []
    /// `-qtest unix:path=Q` / `-qtest chardev:ID`: connected and held open; no qtest command is served.
    public var qtest: ChardevClient?
    /// `-object iothread,id=ID,...`: see IothreadConfig (devices name them with `iothread=`).
    public var iothreads: [IothreadConfig] = []

    /// `-sandbox`: the seccomp filter svmm installs once set-up is done.
    public var sandbox = SandboxOptions()

    public init() {}

    /// Whether `name` is something `-device ...,drive=` can use.
    public func hasDrive(_ name: String) -> Bool {
        drives.contains { $0.id == name } || blockdevs.contains { $0.options.nodeName == name }
    }
}
