import Glibc

/// Building or loading the seccomp filter failed: QEMU 7.2 prints "failed to install seccomp syscall
/// filter in the kernel" and exits; `detail` says which step and why, for the log.
public struct SandboxError: Error, CustomStringConvertible {
    public let detail: String

    init(_ detail: String) { self.detail = detail }

    /// A libseccomp call's negative errno result.
    init(_ step: String, result: Int32) {
        detail = "\(step): \(String(cString: strerror(-result)))"
    }

    public var description: String { "failed to install seccomp syscall filter in the kernel" }
}
