import Glibc

/// What a running svmm may call under `-sandbox on`, as data. Found with `strace -f` over the
/// flows a VMM runs after set-up (the selftest and writer guests, NBD exports served to qemu-img
/// and nbdcopy, NBD client nodes, mirror to new qcow2 images, migration both ways, the storage
/// migration, aio=native and aio=threads, the I/O error policy): KVM's ioctls, file and socket
/// I/O (blockdev-add opens files, NBD and migration connect and accept later), epoll, eventfd,
/// timerfd, Linux AIO, memory mapping, futexes, threads, signals, and what glibc and the Swift
/// runtime call underneath. QEMU's filter is a deny list over an allow-by-default policy; this one
/// refuses everything it does not name.
public enum SyscallAllowlist {
    /// Always allowed once the sandbox is on.
    public static let base: [SyscallRule] = names([
        // File I/O: images, their metadata, blockdev-add and blockdev-create later on.
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "open", "openat", "close", "close_range", "lseek", "fstat", "stat", "lstat", "newfstatat", "statx",
        "fstatfs", "statfs", "fcntl", "ioctl", "dup", "dup2", "dup3", "pipe", "pipe2", "fsync", "fdatasync",
        "fallocate", "ftruncate", "truncate", "sync_file_range", "fadvise64", "readahead", "copy_file_range",
        "unlink", "unlinkat", "rename", "renameat", "renameat2", "readlink", "readlinkat", "getdents64",
        "access", "faccessat", "faccessat2", "chmod", "fchmod", "fchmodat", "flock", "getcwd", "umask",
        "sendfile", "splice", "mkdir", "mkdirat",
        // Sockets: QMP, NBD server and client, migration; unix sockets are chmod-ed 0600.
        "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
        "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
        // The event loop, its timers and wake-ups.
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
        "select", "pselect6", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        // aio=native.
        "io_setup", "io_destroy", "io_submit", "io_getevents", "io_pgetevents", "io_cancel",
        // Memory: guest RAM, the allocator, thread stacks.
        "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore", "membarrier",
        // Threads and their synchronisation (clone only for threads, below).
        "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "sched_yield",
        "sched_getaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
        "sched_get_priority_min", "getpriority", "gettid", "getpid", "getppid", "getuid", "geteuid", "getgid",
        "getegid", "getresuid", "getresgid", "getgroups", "exit", "exit_group", "prctl", "arch_prctl",
        // Time.
        "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
        // Signals: SIGTERM and SIGINT end svmm, the vCPU thread is kicked by a signal.
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigpending", "rt_sigsuspend",
        "sigaltstack", "tgkill", "tkill", "kill", "pause", "restart_syscall",
        // An exec: migration's child, reaped (spawning it is the spawn group's).
        "wait4", "waitid",
        // glibc and the Swift runtime: random seeds, system facts, limits read (not set).
        "getrandom", "uname", "sysinfo", "getrlimit", "getrusage", "times",
    ]) + [
        SyscallRule("clone", when: .init(index: 0, mask: cloneThread, value: cloneThread)),
        SyscallRule("clone3", action: .fail(ENOSYS)),
        // prlimit64(pid, resource, NULL, old): reading a limit; setting one is resourcecontrol's.
        SyscallRule("prlimit64", when: .init(index: 2, mask: nil, value: 0)),
    ]

    /// CLONE_THREAD (linux/sched.h; glibc's sched.h hides it behind _GNU_SOURCE).
    public static let cloneThread: UInt64 = 0x0001_0000

    /// The calls each `-sandbox` group adds when it says `allow` (qemu-seccomp.c's lists).
    public static func rules(for group: SyscallGroup) -> [SyscallRule] {
        switch group {
        case .obsolete:
            // QEMU's obsolete set, those of it x86-64 has.
            names(["_sysctl", "create_module", "get_kernel_syms", "query_module", "sysfs", "uselib", "ustat",
                   "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver"])
        case .elevatePrivileges:
            names(["setuid", "setgid", "setpgid", "setsid", "setreuid", "setregid", "setresuid", "setresgid",
                   "setfsuid", "setfsgid", "setgroups"])
        case .spawn:
            // posix_spawn's clone (CLONE_VM|CLONE_VFORK, no CLONE_THREAD) and the child's exec.
            names(["fork", "vfork", "execve", "execveat", "clone"])
        case .resourceControl:
            names(["setpriority", "sched_setparam", "sched_setscheduler", "sched_setaffinity", "sched_setattr",
                   "sched_getattr", "setrlimit", "prlimit64"])
        }
    }

    /// The whole allowlist for `options`: an unconditional rule replaces a conditional one for the
    /// same call (a group's `clone` or `prlimit64` over the base's restricted ones).
    public static func rules(for options: SandboxOptions) -> [SyscallRule] {
        let extra = options.allowedGroups.flatMap(rules(for:))
        let unconditional = Set(extra.map(\.name))
        return base.filter { !unconditional.contains($0.name) } + extra
    }

    private static func names(_ list: [String]) -> [SyscallRule] { list.map { SyscallRule($0) } }
}
