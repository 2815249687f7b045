/// QEMU's isa-debug-exit: a write of v ends the VMM with exit status (v << 1) | 1.
public final class DebugExit: PortDevice {
    public static let defaultBase: UInt16 = 0x501
    private let onExit: @Sendable (Int32) -> Void
    /// Where it sits, for its state section.
    public let iobase: UInt16

    public init(iobase: UInt16 = DebugExit.defaultBase, onExit: @escaping @Sendable (Int32) -> Void) {
        self.iobase = iobase
        self.onExit = onExit
    }

    public static func exitStatus(for value: UInt32) -> Int32 {
        Int32(truncatingIfNeeded: (value << 1) | 1)
    }

    public func readPort(offset: UInt16, size: Int) -> UInt32 { 0xffff_ffff }

    public func writePort(offset: UInt16, size: Int, value: UInt32) {
        onExit(Self.exitStatus(for: value))
    }
}
