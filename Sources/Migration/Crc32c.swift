import CChecksum

/// CRC-32C (Castagnoli) of a record's bytes: the SSE4.2 instruction where the CPU has it (about
/// five times zlib's CRC-32 here, which cost as much as copying the pages twice), else a table.
enum Crc32c {
    static func of(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return svmm_crc32c(crc, base, bytes.count)
    }
}
