/// The page entries of a `ram` record's payload (`index u32 | kind u8 | [4096 bytes]`), each
/// checked against the RAM size before anything is written.
public struct RamPageEntries {
    public struct Entry {
        public let index: Int
        /// nil for a zero page.
        public let data: UnsafeRawBufferPointer?
    }

    /// Every entry of `record`, or the first fault in it.
    public static func parse(_ record: DecodedRecord, pageCount: Int) throws(StreamError) -> [Entry] {
        let payload = record.payload
        var entries: [Entry] = []
        var position = 0
        while position < payload.count {
            guard payload.count - position >= MigrationStream.pageEntryHeader else {
                throw record.error("page entry at payload byte \(position) is cut short")
            }
            let index = Int(UInt32(bigEndian: payload.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
            let rawKind = payload[position + 4]
            guard index < pageCount else {
                throw record.error("page \(index) is beyond the end of RAM (\(pageCount) pages)")
            }
            position += MigrationStream.pageEntryHeader
            switch RamPageKind(rawValue: rawKind) {
            case .zero?:
                entries.append(Entry(index: index, data: nil))
            case .data?:
                guard payload.count - position >= MigrationStream.pageSize else {
                    throw record.error("page \(index) has \(payload.count - position) of \(MigrationStream.pageSize) bytes")
                }
                entries.append(Entry(index: index, data: UnsafeRawBufferPointer(rebasing: payload[position..<position + MigrationStream.pageSize])))
                position += MigrationStream.pageSize
            case nil:
                throw record.error("page \(index) has unknown kind \(rawKind)")
            }
        }
        return entries
    }
}
