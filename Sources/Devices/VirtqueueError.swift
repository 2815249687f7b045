/// A malformed virtqueue: the device stops using it and asks the driver to reset (NEEDS_RESET).
public enum VirtqueueError: Error, Equatable, CustomStringConvertible {
    case ringOutsideMemory(UInt64)
    case availIndexJump(available: UInt16, lastSeen: UInt16, queueSize: UInt16)
    case headOutOfRange(UInt16)
    case descriptorOutOfRange(UInt16)
    case descriptorOutsideMemory(address: UInt64, length: UInt32)
    case chainTooLong(limit: Int)
    case badIndirectTable(length: UInt32)
    case nestedIndirect
    case writableBeforeReadable

    public var description: String {
        switch self {
        case .ringOutsideMemory(let address): "virtqueue ring at 0x\(String(address, radix: 16)) is outside guest RAM"
        case .availIndexJump(let available, let lastSeen, let size):
            "Guest moved avail index from \(lastSeen) to \(available), more than the queue size \(size)"
        case .headOutOfRange(let head): "Guest says index \(head) is available, beyond the queue"
        case .descriptorOutOfRange(let index): "Desc next is \(index), beyond the table"
        case .descriptorOutsideMemory(let address, let length):
            "descriptor 0x\(String(address, radix: 16))+\(length) is outside guest RAM"
        case .chainTooLong(let limit): "Looped descriptor: chain longer than \(limit)"
        case .badIndirectTable(let length): "Invalid size for indirect buffer table (\(length) bytes)"
        case .nestedIndirect: "Indirect descriptor in an indirect table"
        case .writableBeforeReadable: "Incorrect order for descriptors"
        }
    }
}
