import Foundation

/// The tiny guest's selftest layout (guest-images/README.md): every sector stamped with its number,
/// then 64 sectors at Z zeroed (WRITE_ZEROES) and the next 64 discarded.
enum GuestPattern {
    static func word(sector: UInt64, index: UInt64) -> UInt64 {
        0x5356_0000_0000_0000 | sector << 8 | index
    }

    /// Describes the first sector that does not hold what the selftest leaves behind, or nil.
    static func firstMismatch(in data: Data) -> String? {
        let sectors = UInt64(data.count / 512)
        let zeroStart = (sectors / 2) & ~63
        return data.withUnsafeBytes { raw -> String? in
            for sector in 0..<sectors {
                let base = Int(sector) * 512
                if sector >= zeroStart && sector < zeroStart + 64 {
                    if raw[base..<base + 512].contains(where: { $0 != 0 }) { return "sector \(sector) should be zero" }
                    continue
                }
                if sector >= zeroStart + 64 && sector < zeroStart + 128 { continue }  // discarded: either is fine
                for index in 0..<UInt64(64) {
                    let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: base + Int(index) * 8, as: UInt64.self))
                    if word != self.word(sector: sector, index: index) { return "sector \(sector) word \(index)" }
                }
            }
            return nil
        }
    }
}
