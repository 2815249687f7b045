import Testing
@testable import KVM

@Suite struct GuestMemoryTests {
    @Test func accessesInsideRAMWork() throws {
        let memory = try GuestMemory(guestBase: 0x1000, size: 0x4000)
        try memory.store(UInt32(0xdead_beef), at: 0x1ffc)
        #expect(try memory.load(UInt32.self, at: 0x1ffc) == 0xdead_beef)
        #expect(try memory.readBytes(at: 0x1ffc, count: 4) == [0xef, 0xbe, 0xad, 0xde])
    }

    @Test(arguments: [
        (UInt64(0x0fff), 4),            // below the base
        (UInt64(0x4ffd), 4),            // straddles the end
        (UInt64(0x5000), 1),            // just past the end
        (UInt64.max - 1, 4),            // address + length overflows
    ])
    func accessesOutsideRAMThrow(address: UInt64, length: Int) throws {
        let memory = try GuestMemory(guestBase: 0x1000, size: 0x4000)
        #expect(throws: GuestMemoryError.self) { try memory.region(at: address, length: length) }
        #expect(!memory.contains(address, length: UInt64(length)))
    }
}
