/// The event loop as lower layers see it: call a handler on the loop thread when a file
/// descriptor becomes readable or writable. (Machine's EventLoop implements it; NBD sockets use it.)
public protocol FdWatcher: AnyObject {
    /// Starts calling `handler` with the ready events (`readable`, `writable`, `hangup`).
    /// `blockLayer` handlers (NBD sockets) also run while a synchronous block request waits
    /// (`pollBlockLayer`); the others (the monitor) only in the loop itself.
    func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(BlockError)
    /// Changes which events `fd` is watched for.
    func update(_ fd: Int32, interest: FdInterest) throws(BlockError)
    func unwatch(_ fd: Int32)
    /// Runs `job` on the loop thread soon (after the current handler returns).
    func runSoon(_ job: @escaping () -> Void)
    /// One turn of the block layer's handlers only, waiting at most `timeoutMilliseconds` (QEMU's
    /// aio_poll inside AIO_WAIT_WHILE): a synchronous request (qcow2 metadata over NBD, an NBD
    /// handshake) waits in it, so an NBD server in this same process can still answer.
    func pollBlockLayer(timeoutMilliseconds: Int32)
}

extension FdWatcher {
    public func watch(_ fd: Int32, for interest: FdInterest, handler: @escaping (FdInterest) -> Void) throws(BlockError) {
        try watch(fd, for: interest, blockLayer: false, handler: handler)
    }
}

public struct FdInterest: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = FdInterest(rawValue: 1)
    public static let writable = FdInterest(rawValue: 2)
    public static let hangup = FdInterest(rawValue: 4)
}
