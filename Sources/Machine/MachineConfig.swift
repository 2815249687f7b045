import Block
import Devices

/// Everything the command line says about the machine to build.
public struct MachineConfig: Sendable {
    public enum SerialOutput: Equatable, Sendable {
        case stdio
        case file(String)
        case none
    }

    public struct VirtioBlkConfig: Equatable, Sendable {
        public var drive: String
        public var id: String?
        public var serial: String = ""
        public init(drive: String) { self.drive = drive }
    }

    public struct BlockNodeConfig: Equatable, Sendable {
        public var nodeName: String
        public var file: FileOptions
        /// The option as the user wrote it, for error messages.
        public var source: String
        public init(nodeName: String, file: FileOptions, source: String) {
            self.nodeName = nodeName
            self.file = file
            self.source = source
        }
    }

    public var memorySize: UInt64 = 128 << 20
    public var kernel: String?
    public var append = ""
    public var blockNodes: [BlockNodeConfig] = []
    public var virtioBlkDevices: [VirtioBlkConfig] = []
    public var serial: SerialOutput = .stdio
    public var debugExitPort: UInt16? = DebugExit.defaultBase
    public var startPaused = false
    public var name: String?

    public init() {}
}
