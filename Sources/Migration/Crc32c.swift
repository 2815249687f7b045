import CIsal

/// CRC-32C (Castagnoli) of a record's bytes, with ISA-L's crc32_iscsi, which uses the SSE4.2
/// crc32 instruction and PCLMUL where the CPU has them (zlib's CRC-32 cost as much as copying the
/// pages twice). crc32_iscsi neither inverts its input nor its result: the standard CRC-32C is
/// ~crc32_iscsi(bytes, ~previous).
enum Crc32c {
    static func of(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), !bytes.isEmpty else { return crc }
        var state = ~crc
        var remaining = bytes.count
        while remaining > 0 {  // ISA-L takes an Int32 length
            let chunk = min(remaining, Int(Int32.max))
            state = crc32_iscsi(UnsafeMutablePointer(mutating: base), Int32(chunk), state)
            base += chunk
            remaining -= chunk
        }
        return ~state
    }
}
