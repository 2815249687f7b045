/// A guest-physical access that falls outside guest RAM.
public struct GuestMemoryError: Error, Equatable, CustomStringConvertible {
    public let address: UInt64
    public let length: UInt64

    public var description: String {
        "guest address 0x\(String(address, radix: 16)) (+\(length)) is outside guest RAM"
    }
}
