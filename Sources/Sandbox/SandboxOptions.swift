/// `-sandbox on|off[,obsolete=allow|deny][,elevateprivileges=allow|deny|children][,spawn=allow|deny]
/// [,resourcecontrol=allow|deny]` as QEMU 7.2's parse_sandbox reads it. The defaults are QEMU's:
/// with `on`, only the obsolete calls are refused unless a group says `deny`.
public struct SandboxOptions: Sendable, Equatable {
    public enum Choice: String, Sendable, Equatable {
        case allow
        case deny
    }

    /// `elevateprivileges=children` refuses the set*id calls as `deny` does and also sets
    /// no_new_privs, so that spawned children cannot gain privileges either.
    public enum PrivilegeChoice: String, Sendable, Equatable {
        case allow
        case deny
        case children
    }

    public var enabled = false
    public var obsolete: Choice = .deny
    public var elevatePrivileges: PrivilegeChoice = .allow
    public var spawn: Choice = .allow
    public var resourceControl: Choice = .allow

    public init() {}

    /// The syscall groups the allowlist gains on top of the calls a running svmm needs.
    public var allowedGroups: [SyscallGroup] {
        var groups: [SyscallGroup] = []
        if obsolete == .allow { groups.append(.obsolete) }
        if elevatePrivileges == .allow { groups.append(.elevatePrivileges) }
        if spawn == .allow { groups.append(.spawn) }
        if resourceControl == .allow { groups.append(.resourceControl) }
        return groups
    }
}
