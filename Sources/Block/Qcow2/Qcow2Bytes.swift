/// Big-endian access to byte arrays: every qcow2 structure is stored big-endian.
enum Qcow2Bytes {
    static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func uint64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func put(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    static func put(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * index)) }
    }

    /// A table of 64-bit entries as it is on disk.
    static func decodeEntries(_ bytes: [UInt8]) -> [UInt64] {
        bytes.withUnsafeBytes { raw in
            (0..<raw.count / 8).map { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }

    static func encodeEntries(_ entries: [UInt64]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: entries.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (index, entry) in entries.enumerated() {
                raw.storeBytes(of: entry.bigEndian, toByteOffset: index * 8, as: UInt64.self)
            }
        }
        return bytes
    }
}
