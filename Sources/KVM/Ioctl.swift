import CKVM
import Glibc

/// Issues ioctls on one file descriptor, turning failures into `KvmError`s that name the request.
struct Ioctl {
    let fd: Int32

    @discardableResult
    func call(_ name: String, _ request: UInt, _ argument: UnsafeMutableRawPointer?) throws(KvmError) -> Int32 {
        let result = ckvm_ioctl(fd, request, argument)
        if result < 0 { throw KvmError("ioctl \(name)") }
        return result
    }

    @discardableResult
    func call(_ name: String, _ request: UInt, value: UInt = 0) throws(KvmError) -> Int32 {
        let result = ckvm_ioctl_value(fd, request, value)
        if result < 0 { throw KvmError("ioctl \(name)") }
        return result
    }

    /// Calls with a pointer to `value`, which the kernel may read or fill in.
    @discardableResult
    func call<T>(_ name: String, _ request: UInt, _ value: inout T) throws(KvmError) -> Int32 {
        let result = withUnsafeMutableBytes(of: &value) { ckvm_ioctl(fd, request, $0.baseAddress) }
        if result < 0 { throw KvmError("ioctl \(name)") }
        return result
    }
}
