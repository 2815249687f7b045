/// Structured reply chunk types.
public enum NbdReplyChunk {
    public static let none: UInt16 = 0
    public static let offsetData: UInt16 = 1
    public static let offsetHole: UInt16 = 2
    public static let blockStatus: UInt16 = 5
    public static let error: UInt16 = (1 << 15) + 1
    public static let errorOffset: UInt16 = (1 << 15) + 2

    public static func isError(_ type: UInt16) -> Bool { type & (1 << 15) != 0 }
}
