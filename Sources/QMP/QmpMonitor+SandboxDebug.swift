import Glibc

extension QmpMonitor {
    /// Debug builds only (the tests'): `x-svmm-debug-forbidden-syscall` makes one system call that
    /// no `-sandbox` group allows, getsid(0) (it only reads the session id), so that a
    /// test sees a sandboxed svmm die by SIGSYS; without the sandbox it answers `{}`.
    func sandboxDebugCommands() -> [QmpCommand] {
        #if DEBUG
        [
            QmpCommand("x-svmm-debug-forbidden-syscall") { _ in
                _ = getsid(0)
                return .emptyObject
            },
        ]
        #else
        []
        #endif
    }
}
