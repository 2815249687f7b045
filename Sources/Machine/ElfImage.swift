/// A 64-bit little-endian x86-64 ELF executable: its loadable segments and the PVH entry point
/// from the `Xen` ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18).
public struct ElfImage {
    public struct Segment {
        public let physicalAddress: UInt64
        public let fileOffset: Int
        public let fileSize: Int
        public let memorySize: Int
    }

    static let pvhEntryNoteType: UInt32 = 18

    public let bytes: [UInt8]
    public let segments: [Segment]
    public let pvhEntry: UInt32?

    public init(bytes: [UInt8], name: String) throws(MachineError) {
        self.bytes = bytes
        let reader = ByteReader(bytes: bytes)
        guard bytes.count >= 64, bytes[0..<4] == [0x7f, 0x45, 0x4c, 0x46] else {
            throw MachineError("\(name): not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1, reader.u16(18) == 62 else {
            throw MachineError("\(name): not a 64-bit little-endian x86-64 ELF")
        }
        let headerOffset = Int(reader.u64(32) ?? 0)
        let headerSize = Int(reader.u16(54) ?? 0)
        let headerCount = Int(reader.u16(56) ?? 0)
        var segments: [Segment] = []
        var entry: UInt32?
        for index in 0..<headerCount {
            let base = headerOffset + index * headerSize
            guard headerSize >= 56, let type = reader.u32(base), let offset = reader.u64(base + 8),
                  let physical = reader.u64(base + 24), let fileSize = reader.u64(base + 32),
                  let memorySize = reader.u64(base + 40), let align = reader.u64(base + 48),
                  offset <= UInt64(bytes.count), fileSize <= UInt64(bytes.count) - offset, memorySize >= fileSize,
                  memorySize < 1 << 32 else {
                throw MachineError("\(name): program header \(index) is malformed")
            }
            switch type {
            case 1: segments.append(Segment(physicalAddress: physical, fileOffset: Int(offset),
                                            fileSize: Int(fileSize), memorySize: Int(memorySize)))
            case 4: entry = entry ?? Self.pvhEntry(in: reader, from: Int(offset), size: Int(fileSize), align: Int(max(align, 4)))
            default: break
            }
        }
        self.segments = segments
        self.pvhEntry = entry
    }

    /// Walks the notes of one PT_NOTE segment for the PVH entry.
    private static func pvhEntry(in reader: ByteReader, from start: Int, size: Int, align: Int) -> UInt32? {
        var position = start
        let end = start + size
        func aligned(_ value: Int) -> Int { (value + align - 1) / align * align }
        while position + 12 <= end {
            guard let nameSize = reader.u32(position), let descSize = reader.u32(position + 4),
                  let type = reader.u32(position + 8), nameSize < 256, descSize < 4096 else { return nil }
            let nameStart = position + 12
            let descStart = nameStart + aligned(Int(nameSize))
            guard descStart + Int(descSize) <= end else { return nil }
            let name = reader.bytes[nameStart..<nameStart + Int(nameSize)].prefix { $0 != 0 }
            if Array(name) == Array("Xen".utf8), type == pvhEntryNoteType, descSize >= 4 {
                return reader.u32(descStart)
            }
            position = descStart + aligned(Int(descSize))
        }
        return nil
    }
}
