import Testing
@testable import Migration

/// The record checksum is the standard CRC-32C whatever code ISA-L picks on this CPU, so streams
/// move between machines with and without SSE4.2.
@Suite struct Crc32cTests {
    @Test func theCheckValueOfTheStandard() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { Crc32c.of($0) } == 0xE306_9283)
    }

    /// A page and three bytes of a pattern (wide steps and a byte tail); the value is the
    /// table-driven one (computed independently in Python).
    @Test func aPageWithAShortTailMatchesTheTableDrivenValue() {
        let bytes = (0..<4099).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        #expect(bytes.withUnsafeBytes { Crc32c.of($0) } == 0x992E_36C3)
    }

    @Test func itContinuesAcrossPieces() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let whole = bytes.withUnsafeBytes { Crc32c.of($0) }
        let first = bytes.withUnsafeBytes { Crc32c.of(UnsafeRawBufferPointer(rebasing: $0[..<333])) }
        let both = bytes.withUnsafeBytes { Crc32c.of(UnsafeRawBufferPointer(rebasing: $0[333...]), continuing: first) }
        #expect(both == whole)
    }
}
