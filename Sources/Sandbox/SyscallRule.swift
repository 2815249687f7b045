/// One allowlist entry: a system call by its name (resolved for the native architecture by
/// libseccomp) and, for a few calls, a condition on one argument.
public struct SyscallRule: Sendable, Equatable {
    /// `(argument & mask) == value` on the argument at `index` (SCMP_CMP_MASKED_EQ), or
    /// `argument == value` (SCMP_CMP_EQ) when `mask` is nil.
    public struct Condition: Sendable, Equatable {
        public let index: UInt32
        public let mask: UInt64?
        public let value: UInt64
    }

    public enum Action: Sendable, Equatable {
        case allow
        /// Fails with this errno instead: clone3 answers ENOSYS, so glibc falls back to clone,
        /// whose flags a filter can read (clone3's are behind a pointer).
        case fail(Int32)
    }

    public let name: String
    public let condition: Condition?
    public let action: Action

    public init(_ name: String, when condition: Condition? = nil, action: Action = .allow) {
        self.name = name
        self.condition = condition
        self.action = action
    }
}
