import Glibc

/// Debug builds only: the filter traps (SCMP_ACT_TRAP) instead of killing, and this SIGSYS
/// handler writes `svmm: sandbox: forbidden system call N` with async-signal-safe calls only,
/// then dies by SIGSYS as a killed process would. Release builds never install it.
enum ForbiddenSyscallReport {
    static func installHandler() {
        var action = sigaction()
        action.sa_flags = SA_SIGINFO | Int32(truncatingIfNeeded: SA_RESETHAND)
        action.__sigaction_handler.sa_sigaction = { _, info, _ in
            ForbiddenSyscallReport.report(info?.pointee._sifields._sigsys._syscall ?? -1)
            // SA_RESETHAND restored the default action: the same signal again ends the process.
            raise(SIGSYS)
        }
        sigaction(SIGSYS, &action, nil)
    }

    /// Formats the number into a stack buffer: no allocation, no locks.
    private static func report(_ number: Int32) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 80) { buffer in
            var length = 0
            for byte in "svmm: sandbox: forbidden system call ".utf8 { buffer[length] = byte; length += 1 }
            var value = number < 0 ? 0 : Int(number)
            var reversed = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
            var count = 0
            withUnsafeMutableBytes(of: &reversed) { scratch in
                repeat {
                    scratch[count] = UInt8(48 + value % 10)
                    value /= 10
                    count += 1
                } while value > 0 && count < 10
                while count > 0 { count -= 1; buffer[length] = scratch[count]; length += 1 }
            }
            buffer[length] = 10
            length += 1
            _ = Glibc.write(2, buffer.baseAddress, length)
        }
    }
}
