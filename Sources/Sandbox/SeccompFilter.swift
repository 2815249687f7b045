import CSeccomp
import Glibc

/// The seccomp filter `-sandbox on` installs (QEMU's seccomp_start, with an allowlist): every call
/// outside `SyscallAllowlist.rules(for:)` kills the whole process, as QEMU's filter kills on a
/// denied call. A debug build traps instead and reports the call's number before it dies by
/// SIGSYS (ForbiddenSyscallReport), which names what a new flow needs.
public enum SeccompFilter {
    /// What a call outside the list gets.
    public static var defaultAction: UInt32 {
        #if DEBUG
        return SCMP_ACT_TRAP
        #else
        return SCMP_ACT_KILL_PROCESS
        #endif
    }

    /// Builds and loads the filter for every thread of the process (TSYNC: the loop, vCPU and
    /// worker threads already run when set-up ends).
    public static func install(_ options: SandboxOptions) throws(SandboxError) {
        guard options.enabled else { return }
        // `elevateprivileges=children` asks for no_new_privs (QEMU's prctl): seccomp_load sets it
        // for every filter (libseccomp's SCMP_FLTATR_CTL_NNP default), so children never gain any.
        #if DEBUG
        ForbiddenSyscallReport.installHandler()
        #endif
        guard let context = seccomp_init(defaultAction) else { throw SandboxError("seccomp_init failed") }
        defer { seccomp_release(context) }
        let tsync = seccomp_attr_set(context, SCMP_FLTATR_CTL_TSYNC, 1)
        guard tsync == 0 else { throw SandboxError("seccomp_attr_set(TSYNC)", result: tsync) }
        for rule in SyscallAllowlist.rules(for: options) { try add(rule, to: context) }
        let loaded = seccomp_load(context)
        guard loaded == 0 else { throw SandboxError("seccomp_load", result: loaded) }
    }

    private static func add(_ rule: SyscallRule, to context: scmp_filter_ctx) throws(SandboxError) {
        let number = seccomp_syscall_resolve_name(rule.name)
        guard number != __NR_SCMP_ERROR else { throw SandboxError("unknown system call \(rule.name)") }
        let action: UInt32 = switch rule.action {
        case .allow: SCMP_ACT_ALLOW
        case .fail(let errno): 0x0005_0000 | UInt32(errno & 0xffff)  // SCMP_ACT_ERRNO(errno), a C macro
        }
        var comparisons: [scmp_arg_cmp] = []
        if let condition = rule.condition {
            comparisons.append(scmp_arg_cmp(arg: condition.index, op: condition.mask == nil ? SCMP_CMP_EQ : SCMP_CMP_MASKED_EQ,
                                            datum_a: condition.mask ?? condition.value,
                                            datum_b: condition.mask == nil ? 0 : condition.value))
        }
        let added = seccomp_rule_add_array(context, action, number, UInt32(comparisons.count), comparisons)
        // -EDOM: a call this architecture does not have (a negative pseudo number: some obsolete ones).
        guard added == 0 || (number < 0 && added == -EDOM) else {
            throw SandboxError("seccomp_rule_add(\(rule.name))", result: added)
        }
    }
}
