/// svmm's own migration stream format (not QEMU's): a header, then records, each
/// `type u8 | name length u8 | name | instance u32 | version u32 | payload length u32 | payload | crc32 u32`
/// (integers big-endian, the CRC-32C over everything of the record before it), ending with an
/// `end` record. RAM travels in `ram` records: `count u32 | (index u32 | kind u8) × count`, then
/// the 4096 bytes of each data entry in table order — the table first, so that the destination
/// knows where every page goes before its bytes come and reads them straight into guest RAM.
public enum MigrationStream {
    /// "SVMMIG" and CR LF, so a text tool or a truncated transfer is told apart at once.
    public static let magic: [UInt8] = Array("SVMMIG\r\n".utf8)
    /// 3: `ram` records carry their page table before the data (2 interleaved them; 1 had
    /// zlib's CRC-32 where 2 and 3 have CRC-32C).
    public static let version: UInt32 = 3
    public static let pageSize = 4096
    /// magic, version, page size.
    public static let headerSize = 16
    /// The most pages one `ram` record carries (1 MiB of data: a checksum per MiB).
    public static let pagesPerRecord = 256
    /// Device state and RAM records alike stay below this; a longer one is hostile or corrupt.
    public static let maxPayload = 16 << 20
    /// A table entry: index, kind.
    public static let pageEntryHeader = 5
    /// The entry count before a `ram` record's table.
    public static let ramTableHeader = 4
    /// The bytes a record adds around its name and payload: type, name length, instance,
    /// version, payload length, checksum.
    public static let recordOverhead = 1 + 1 + 4 + 4 + 4 + 4
}
