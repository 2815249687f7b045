/// The 16550's registers a driver programs (QEMU's vmstate_serial, without the FIFOs svmm does not model).
public struct SerialState: Sendable, Equatable {
    public static let sectionName = "serial"
    public static let version: UInt32 = 1

    public var interruptEnable: UInt8
    public var lineControl: UInt8
    public var modemControl: UInt8
    public var scratch: UInt8
    public var divisor: UInt16

    public init(interruptEnable: UInt8, lineControl: UInt8, modemControl: UInt8, scratch: UInt8, divisor: UInt16) {
        self.interruptEnable = interruptEnable
        self.lineControl = lineControl
        self.modemControl = modemControl
        self.scratch = scratch
        self.divisor = divisor
    }
}
