/// isa-debug-exit has no registers; its section says where it sits, so a destination with the
/// port elsewhere (or none) is refused rather than silently different.
public struct DebugExitState: Sendable, Equatable {
    public static let sectionName = "debug-exit"
    public static let version: UInt32 = 1

    public var iobase: UInt16
    public var iosize: UInt8

    public init(iobase: UInt16, iosize: UInt8) {
        self.iobase = iobase
        self.iosize = iosize
    }
}
