/// How the `file` driver's requests reach the kernel: libaio (`aio=native`) or a thread pool
/// (`aio=threads`). Both finish requests on the event-loop thread when it calls `processCompletions`.
public protocol FileIoEngine: AnyObject {
    /// Signalled when completions are waiting; the event loop watches it edge-triggered (never read).
    var eventFd: Int32 { get }
    func submit(_ request: FileRequest)
    func processCompletions()
    func plug()
    func unplug()
}
