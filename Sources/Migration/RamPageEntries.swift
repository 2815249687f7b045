/// The page entries of a `ram` record's payload (`count u32 | (index u32 | kind u8) × count |
/// 4096 bytes per data entry`), each checked against the RAM size before anything is written.
public struct RamPageEntries {
    public struct Entry {
        public let index: Int
        /// nil for a zero page.
        public let data: UnsafeRawBufferPointer?
    }

    /// One table entry, checked.
    struct TableEntry {
        let index: Int
        let isData: Bool
    }

    /// The entry count of a payload that starts with `prefix` (at least its 4 bytes), checked
    /// against the payload's length: the table must fit.
    static func entryCount(_ prefix: UnsafeRawBufferPointer, payloadLength: Int, in record: DecodedRecord) throws(StreamError) -> Int {
        guard payloadLength >= MigrationStream.ramTableHeader, prefix.count >= MigrationStream.ramTableHeader else {
            throw record.error("a ram record of \(payloadLength) bytes has no page count")
        }
        let count = Int(UInt32(bigEndian: prefix.loadUnaligned(as: UInt32.self)))
        guard count <= (payloadLength - MigrationStream.ramTableHeader) / MigrationStream.pageEntryHeader else {
            throw record.error("\(count) page entries do not fit a payload of \(payloadLength) bytes")
        }
        return count
    }

    /// The table's entries: every index within RAM, every kind known, no page twice, and the
    /// payload exactly as long as the table and its data pages.
    static func table(_ table: UnsafeRawBufferPointer, count: Int, payloadLength: Int, pageCount: Int,
                      in record: DecodedRecord) throws(StreamError) -> [TableEntry] {
        var entries: [TableEntry] = []
        entries.reserveCapacity(count)
        var seen = Set<Int>(minimumCapacity: count)
        for position in 0..<count {
            let at = position * MigrationStream.pageEntryHeader
            let index = Int(UInt32(bigEndian: table.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            let rawKind = table[at + 4]
            guard index < pageCount else { throw record.error("page \(index) is beyond the end of RAM (\(pageCount) pages)") }
            guard let kind = RamPageKind(rawValue: rawKind) else { throw record.error("page \(index) has unknown kind \(rawKind)") }
            guard seen.insert(index).inserted else { throw record.error("page \(index) comes twice in one record") }
            entries.append(TableEntry(index: index, isData: kind == .data))
        }
        let dataPages = entries.reduce(0) { $0 + ($1.isData ? 1 : 0) }
        let expected = MigrationStream.ramTableHeader + count * MigrationStream.pageEntryHeader + dataPages * MigrationStream.pageSize
        guard payloadLength == expected else {
            throw record.error("a payload of \(payloadLength) bytes for \(count) page entries (\(dataPages) with data) of \(expected) bytes")
        }
        return entries
    }

    /// Every entry of `record` (whose payload the decoder read whole), or the first fault in it.
    public static func parse(_ record: DecodedRecord, pageCount: Int) throws(StreamError) -> [Entry] {
        let payload = record.payload
        let count = try entryCount(payload, payloadLength: payload.count, in: record)
        let tableStart = MigrationStream.ramTableHeader
        let tableEnd = tableStart + count * MigrationStream.pageEntryHeader
        let entries = try table(UnsafeRawBufferPointer(rebasing: payload[tableStart..<tableEnd]), count: count,
                                payloadLength: payload.count, pageCount: pageCount, in: record)
        var dataAt = tableEnd
        return entries.map { entry in
            guard entry.isData else { return Entry(index: entry.index, data: nil) }
            defer { dataAt += MigrationStream.pageSize }
            return Entry(index: entry.index, data: UnsafeRawBufferPointer(rebasing: payload[dataAt..<dataAt + MigrationStream.pageSize]))
        }
    }
}
