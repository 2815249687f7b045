import CKVM

/// Builds the flattened device tree handed to the guest as PVH module 0 (with libfdt).
public struct DeviceTree {
    public struct VirtioNode {
        public let address: UInt64
        public let size: UInt64
        public let irq: UInt32
    }

    public var memorySize: UInt64
    public var bootArguments: String
    public var hasSerial: Bool
    public var virtioNodes: [VirtioNode] = []

    public init(memorySize: UInt64, bootArguments: String, hasSerial: Bool) {
        self.memorySize = memorySize
        self.bootArguments = bootArguments
        self.hasSerial = hasSerial
    }

    public func build() throws(MachineError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: MemoryMap.fdtMax)
        let status = buffer.withUnsafeMutableBytes { raw -> Int32 in
            var writer = FdtWriter(fdt: raw.baseAddress!, size: Int32(raw.count))
            return writer.write(self)
        }
        guard status == 0 else {
            throw MachineError("building the device tree: \(String(cString: fdt_strerror(status)))")
        }
        let total = buffer.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self))) }
        return Array(buffer.prefix(total))
    }
}
