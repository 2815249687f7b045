/// The groups of `-sandbox`'s options, each a set of system calls QEMU's filter names
/// (qemu-seccomp.c's QEMU_SECCOMP_SET_*): svmm's allowlist gains a group's calls when its option
/// says `allow`.
public enum SyscallGroup: Sendable, CaseIterable {
    case obsolete
    case elevatePrivileges
    case spawn
    case resourceControl
}
