import Testing
@testable import Machine

/// The in-place zero check the migration stream uses for every RAM page: any non-zero byte, at
/// any position (also in a short tail), makes a page non-zero.
@Suite struct RamPageZeroTests {
    @Test func aNonZeroByteAnywhereIsSeen() {
        for size in [0, 1, 7, 63, 64, 65, 4096, 4096 + 7] {
            var bytes = [UInt8](repeating: 0, count: size)
            #expect(bytes.withUnsafeBytes { GuestRam.isZero($0) }, "size \(size)")
            for position in 0..<size {
                bytes[position] = 0x80
                #expect(!bytes.withUnsafeBytes { GuestRam.isZero($0) }, "size \(size), byte \(position)")
                bytes[position] = 0
            }
        }
    }
}
