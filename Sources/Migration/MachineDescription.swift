/// What both sides must agree on before any page moves: RAM size and the device sections.
/// The source sends its own in the `machine` record; the destination compares with its own.
public struct MachineDescription: Equatable, Sendable {
    public let ramSize: UInt64
    public let sections: [SectionID]

    public init(ramSize: UInt64, sections: [SectionID]) {
        self.ramSize = ramSize
        self.sections = sections
    }

    public var pageCount: Int { Int(clamping: ramSize / UInt64(MigrationStream.pageSize)) }

    /// ramSize u64 | count u16 | (name length u8 | name | instance u32)*
    public func encoded() -> [UInt8] {
        let buffer = RecordBuffer(capacity: 256)
        buffer.append(ramSize)
        buffer.append(UInt8(truncatingIfNeeded: min(sections.count, 0xffff) >> 8))
        buffer.append(UInt8(truncatingIfNeeded: min(sections.count, 0xffff)))
        for section in sections.prefix(0xffff) {
            let name = Array(section.name.utf8.prefix(255))
            buffer.append(UInt8(name.count))
            buffer.append(name)
            buffer.append(section.instance)
        }
        return buffer.array
    }

    public static func decode(_ record: DecodedRecord) throws(StreamError) -> MachineDescription {
        var reader = PayloadReader(record)
        let ramSize = try reader.uint64("RAM size")
        let count = Int(try reader.uint8("section count")) << 8 | Int(try reader.uint8("section count"))
        var sections: [SectionID] = []
        for _ in 0..<count {
            let name = try reader.string("section name")
            sections.append(SectionID(name: name, instance: try reader.uint32("section instance")))
        }
        try reader.expectEnd()
        return MachineDescription(ramSize: ramSize, sections: sections)
    }

    /// The destination's check of the source's description (`self` is the destination's), in
    /// QEMU's words where QEMU has them (ram_load's "Length mismatch", qemu_loadvm_section_start_full's
    /// "Unknown savevm section").
    public func check(source: MachineDescription) throws(StreamError) {
        guard source.ramSize == ramSize else {
            throw StreamError("Length mismatch: ram: 0x\(String(source.ramSize, radix: 16)) in != 0x\(String(ramSize, radix: 16)): Invalid argument (the source has \(source.ramSize >> 20) MiB of RAM, this VM \(ramSize >> 20) MiB)")
        }
        let mine = Set(sections)
        if let unknown = source.sections.first(where: { !mine.contains($0) }) {
            throw StreamError("Unknown savevm section or instance \(unknown). Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices")
        }
        let theirs = Set(source.sections)
        if let missing = sections.first(where: { !theirs.contains($0) }) {
            throw StreamError("The source VM has no section \(missing): Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices")
        }
    }
}
