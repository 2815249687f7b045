import Devices

/// The x86 I/O port space: which device answers which port range. Unclaimed reads return all
/// ones and unclaimed writes are dropped, as on a PC.
struct PortBus {
    private var ranges: [(base: UInt16, count: UInt16, device: PortDevice)] = []

    mutating func add(_ device: PortDevice, base: UInt16, count: UInt16) {
        ranges.append((base, count, device))
    }

    private func find(_ port: UInt16) -> (PortDevice, UInt16)? {
        for range in ranges where port >= range.base && port - range.base < range.count {
            return (range.device, port - range.base)
        }
        return nil
    }

    func read(port: UInt16, size: Int) -> UInt32 {
        guard let (device, offset) = find(port) else { return UInt32.max }
        return device.readPort(offset: offset, size: size)
    }

    func write(port: UInt16, size: Int, value: UInt32) {
        guard let (device, offset) = find(port) else { return }
        device.writePort(offset: offset, size: size, value: value)
    }
}
