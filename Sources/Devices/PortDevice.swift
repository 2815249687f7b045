/// A device on the x86 I/O port bus. Called on the vCPU thread that made the access.
public protocol PortDevice: AnyObject {
    func readPort(offset: UInt16, size: Int) -> UInt32
    func writePort(offset: UInt16, size: Int, value: UInt32)
}
