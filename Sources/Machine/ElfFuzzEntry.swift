/// The ELF loader's fuzz entry (`make fuzz`, target `elf`): any bytes as a `-kernel` file.
public enum ElfFuzzEntry {
    /// Never traps: a hostile file is a `MachineError`. What it accepts must describe only bytes
    /// inside the file, because the PVH loader copies those ranges without looking again.
    public static func fuzz(_ data: [UInt8]) {
        guard let image = try? ElfImage(bytes: data, name: "fuzz.elf") else { return }
        for segment in image.segments {
            precondition(segment.fileOffset >= 0 && segment.fileSize >= 0 && segment.fileSize <= segment.memorySize)
            precondition(segment.fileOffset <= data.count && segment.fileSize <= data.count - segment.fileOffset)
            _ = data[segment.fileOffset..<segment.fileOffset + segment.fileSize].reduce(0, &+)
        }
    }
}
