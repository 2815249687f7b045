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
        // Every offset, size and sum below comes from the file: each is checked in UInt64 before
        // it becomes an Int, so a hostile header is an error naming the field, never a trap.
        let fileSize = UInt64(bytes.count)
        let headerOffset = reader.u64(32) ?? 0
        let headerSize = UInt64(reader.u16(54) ?? 0)
        let headerCount = UInt64(reader.u16(56) ?? 0)
        if headerCount > 0 && headerSize < 56 {
            throw MachineError("\(name): program header entry size \(headerSize) (e_phentsize) is smaller than 56")
        }
        // headerSize and headerCount are 16-bit, so their product cannot overflow.
        guard headerOffset <= fileSize, headerSize * headerCount <= fileSize - headerOffset else {
            throw MachineError("\(name): program header table at e_phoff \(headerOffset) (\(headerCount) x \(headerSize) bytes) "
                               + "lies outside the file (\(fileSize) bytes)")
        }
        var segments: [Segment] = []
        var entry: UInt32?
        for index in 0..<Int(headerCount) {
            let base = Int(headerOffset) + index * Int(headerSize)
            guard let type = reader.u32(base), let offset = reader.u64(base + 8),
                  let physical = reader.u64(base + 24), let size = reader.u64(base + 32),
                  let memorySize = reader.u64(base + 40), let align = reader.u64(base + 48) else {
                throw MachineError("\(name): program header \(index) is truncated")
            }
            guard type == 1 || type == 4 else { continue }
            guard offset <= fileSize, size <= fileSize - offset else {
                throw MachineError("\(name): program header \(index): file range (offset \(offset), size \(size)) "
                                   + "lies outside the file (\(fileSize) bytes)")
            }
            if type == 4 {
                entry = entry ?? Self.pvhEntry(in: reader, from: Int(offset), size: Int(size), align: align == 8 ? 8 : 4)
                continue
            }
            guard memorySize >= size else {
                throw MachineError("\(name): program header \(index): memory size \(memorySize) is smaller than its file size \(size)")
            }
            guard memorySize < 1 << 32 else {
                throw MachineError("\(name): program header \(index): memory size \(memorySize) is 4 GiB or more")
            }
            guard physical <= UInt64.max - memorySize else {
                throw MachineError("\(name): program header \(index): segment at physical address 0x\(String(physical, radix: 16)) "
                                   + "with memory size \(memorySize) ends beyond 2^64")
            }
            segments.append(Segment(physicalAddress: physical, fileOffset: Int(offset), fileSize: Int(size), memorySize: Int(memorySize)))
        }
        self.segments = segments
        self.pvhEntry = entry
    }

    /// Walks the notes of one PT_NOTE segment (already inside the file) for the PVH entry; `align`
    /// is 4 or 8, as Linux reads note alignment, so the rounding below cannot overflow.
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
