/// The event loop as lower layers see it: call a handler on the loop thread when a file
/// descriptor becomes readable or writable. (Loop's EventLoop implements it; NBD and QMP sockets, timers and jobs use it.)
public protocol FdWatcher: AnyObject {
    /// Starts calling `handler` with the ready events (`readable`, `writable`, `hangup`).
    /// `blockLayer` handlers (NBD sockets) also run while a synchronous block request waits
    /// (`pollBlockLayer`); the others (the monitor) only in the loop itself.
    func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(SystemCallError)
    /// Changes which events `fd` is watched for.
    func update(_ fd: Int32, interest: FdInterest) throws(SystemCallError)
    func unwatch(_ fd: Int32)
    /// Runs `job` on the loop thread soon (after the current handler returns).
    func runSoon(_ job: @escaping () -> Void)
    /// One turn of the block layer's handlers only, waiting at most `timeoutMilliseconds` (QEMU's
    /// aio_poll inside AIO_WAIT_WHILE): a synchronous request (qcow2 metadata over NBD, an NBD
    /// handshake) waits in it, so an NBD server in this same process can still answer.
    func pollBlockLayer(timeoutMilliseconds: Int32)
}

extension FdWatcher {
    public func watch(_ fd: Int32, for interest: FdInterest, handler: @escaping (FdInterest) -> Void) throws(SystemCallError) {
        try watch(fd, for: interest, blockLayer: false, handler: handler)
    }
}
