import Glibc

/// The signal that pulls a vCPU thread out of KVM_RUN (with `immediate_exit` closing the race).
enum VcpuKick {
    static let signal = SIGUSR1

    /// A handler that does nothing: the point is only to interrupt the ioctl with EINTR.
    static func installHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(signal, &action, nil)
    }

    /// A thread inherits its creator's signal mask, and a creator may block everything (a test
    /// runner's worker threads do): the vCPU thread unblocks the kick for itself.
    static func unblockOnThisThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
