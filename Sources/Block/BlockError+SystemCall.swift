extension BlockError {
    /// A failed system call under a block-layer operation (a loop registration, a thread, a timer):
    /// its text (`epoll_ctl ADD fd 7: EBADF`) and errno are kept.
    public init(_ error: SystemCallError) {
        self.init(error.description, errno: error.errno, kind: error.kind)
    }
}
