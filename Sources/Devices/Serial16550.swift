import Glibc

/// A 16550A UART with output only (what `-serial` needs for a guest console): the transmitter is
/// always ready, bytes go straight to `outputFd`, and divisor/control registers are kept so a
/// driver reads back what it wrote. Used only by the single vCPU thread.
public final class Serial16550: PortDevice {
    public static let defaultBase: UInt16 = 0x3f8
    public static let portCount: UInt16 = 8
    static let lineStatusTransmitterEmpty: UInt8 = 0x60  // THRE | TEMT
    static let divisorLatch: UInt8 = 0x80

    private let outputFd: Int32?
    var interruptEnable: UInt8 = 0
    var lineControl: UInt8 = 0x03
    var modemControl: UInt8 = 0
    var scratch: UInt8 = 0
    var divisor: UInt16 = 12

    /// `outputFd` nil discards output (`-serial none`).
    public init(outputFd: Int32?) {
        self.outputFd = outputFd
    }

    private var divisorLatchAccess: Bool { lineControl & Self.divisorLatch != 0 }

    public func readPort(offset: UInt16, size: Int) -> UInt32 {
        let value: UInt8 = switch offset {
        case 0: divisorLatchAccess ? UInt8(divisor & 0xff) : 0
        case 1: divisorLatchAccess ? UInt8(divisor >> 8) : interruptEnable
        case 2: 0xc1  // FIFOs enabled, no interrupt pending
        case 3: lineControl
        case 4: modemControl
        case 5: Self.lineStatusTransmitterEmpty
        case 6: 0xb0  // DCD, DSR, CTS
        case 7: scratch
        default: 0
        }
        return UInt32(value)
    }

    public func writePort(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        switch offset {
        case 0 where divisorLatchAccess: divisor = (divisor & 0xff00) | UInt16(byte)
        case 0: transmit(byte)
        case 1 where divisorLatchAccess: divisor = (divisor & 0x00ff) | UInt16(byte) << 8
        case 1: interruptEnable = byte & 0x0f
        case 3: lineControl = byte
        case 4: modemControl = byte & 0x1f
        case 7: scratch = byte
        default: break
        }
    }

    private func transmit(_ byte: UInt8) {
        guard let outputFd else { return }
        var copy = byte
        while write(outputFd, &copy, 1) < 0 && errno == EINTR {}
    }
}
