/// A guest-physical access that falls outside guest RAM.
public struct GuestMemoryError: KindedError, Equatable {
    public let address: UInt64
    public let length: UInt64
    public var kind: ErrorKind { .generic }

    public var description: String {
        "guest address 0x\(String(address, radix: 16)) (+\(length)) is outside guest RAM"
    }
}
