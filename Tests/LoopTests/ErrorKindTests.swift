import Glibc
import Loop
import Testing

/// Errors keep their kind across the layers, and each kind names QEMU 7.2's ErrorClass.
@Suite struct ErrorKindTests {
    @Test func eachKindIsQemusClassName() {
        #expect(ErrorKind.allCases.map(\.qmpClass)
            == ["GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound", "KVMMissingCap"])
    }

    @Test func aSystemCallErrorNamesTheCallAndTheErrnoAndIsGenericUnlessTold() {
        let error = SystemCallError("epoll_ctl ADD fd 7", errno: EBADF)
        #expect(error.description == "epoll_ctl ADD fd 7: EBADF")
        #expect(error.kind == .generic)
        #expect(SystemCallError("KVM_CAP_XSAVE", errno: ENOTSUP, kind: .kvmMissingCap).kind == .kvmMissingCap)
    }
}
