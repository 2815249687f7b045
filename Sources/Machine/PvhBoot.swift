import KVM

/// Boots a PVH ELF the way QEMU does: loads its segments, writes `struct hvm_start_info`
/// (command line, memory map, module 0 = the FDT) and says where to enter in 32-bit protected mode.
public struct PvhBoot {
    static let startInfoMagic: UInt32 = 0x336e_c578
    static let memoryTypeRAM: UInt32 = 1

    public let entry: UInt32
    public let startInfoAddress = MemoryMap.startInfo

    /// Loads `image` into `memory` and lays out the boot information.
    public init(image: ElfImage, commandLine: String, fdt: [UInt8], memory: GuestMemory, kernelName: String) throws(MachineError) {
        guard let entry = image.pvhEntry else {
            throw MachineError("\(kernelName): no PVH entry point (ELF note Xen/XEN_ELFNOTE_PHYS32_ENTRY)")
        }
        self.entry = entry
        do {
            for segment in image.segments {
                try memory.writeBytes(image.bytes[segment.fileOffset..<segment.fileOffset + segment.fileSize],
                                      at: segment.physicalAddress)
                try memory.fill(0, at: segment.physicalAddress + UInt64(segment.fileSize),
                                count: segment.memorySize - segment.fileSize)
            }
        } catch {
            throw MachineError("\(kernelName): a segment does not fit in guest RAM (\(error))")
        }
        try Self.writeStartInfo(commandLine: commandLine, fdt: fdt, memory: memory)
    }

    private static func writeStartInfo(commandLine: String, fdt: [UInt8], memory: GuestMemory) throws(MachineError) {
        let line = Array(commandLine.utf8) + [0]
        guard line.count <= MemoryMap.commandLineMax else {
            throw MachineError("kernel command line too long (\(line.count) bytes, at most \(MemoryMap.commandLineMax))")
        }
        guard fdt.count <= MemoryMap.fdtMax else { throw MachineError("device tree too large") }
        let ramRanges = Self.ramRanges(memorySize: UInt64(memory.size))
        do {
            try memory.writeBytes(line, at: MemoryMap.commandLine)
            try memory.writeBytes(fdt, at: MemoryMap.fdt)
            for (index, range) in ramRanges.enumerated() {
                let entry = MemoryMap.memoryMapTable + UInt64(index) * 24
                try memory.store(range.start, at: entry)
                try memory.store(range.end - range.start, at: entry + 8)
                try memory.store(memoryTypeRAM, at: entry + 16)
                try memory.store(UInt32(0), at: entry + 20)
            }
            // Module 0: the flattened device tree.
            try memory.store(MemoryMap.fdt, at: MemoryMap.moduleList)
            try memory.store(UInt64(fdt.count), at: MemoryMap.moduleList + 8)
            try memory.store(UInt64(0), at: MemoryMap.moduleList + 16)
            try memory.store(UInt64(0), at: MemoryMap.moduleList + 24)
            let info = MemoryMap.startInfo
            try memory.store(startInfoMagic, at: info)
            try memory.store(UInt32(1), at: info + 4)             // version
            try memory.store(UInt32(0), at: info + 8)             // flags
            try memory.store(UInt32(1), at: info + 12)            // nr_modules
            try memory.store(MemoryMap.moduleList, at: info + 16)
            try memory.store(MemoryMap.commandLine, at: info + 24)
            try memory.store(UInt64(0), at: info + 32)            // rsdp_paddr: no ACPI
            try memory.store(MemoryMap.memoryMapTable, at: info + 40)
            try memory.store(UInt32(ramRanges.count), at: info + 48)
            try memory.store(UInt32(0), at: info + 52)
        } catch {
            throw MachineError("guest RAM too small for the boot information (\(error))")
        }
    }

    static func ramRanges(memorySize: UInt64) -> [(start: UInt64, end: UInt64)] {
        [(0, min(MemoryMap.lowMemoryEnd, memorySize)), (MemoryMap.highMemoryStart, memorySize)]
            .filter { $0.end > $0.start }
    }
}
