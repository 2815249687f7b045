/// Transmission-phase command types.
public enum NbdCommand {
    public static let read: UInt16 = 0
    public static let write: UInt16 = 1
    public static let disconnect: UInt16 = 2
    public static let flush: UInt16 = 3
    public static let trim: UInt16 = 4
    public static let cache: UInt16 = 5
    public static let writeZeroes: UInt16 = 6
    public static let blockStatus: UInt16 = 7

    /// QEMU's nbd_cmd_lookup.
    public static func name(_ type: UInt16) -> String {
        switch type {
        case read: "read"
        case write: "write"
        case disconnect: "disconnect"
        case flush: "flush"
        case trim: "trim"
        case cache: "cache"
        case writeZeroes: "write zeroes"
        case blockStatus: "block status"
        default: "<unknown>"
        }
    }
}
