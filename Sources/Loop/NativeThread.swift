import Glibc

/// Starts a detached POSIX thread running `body` (vCPU and event-loop threads are long-lived
/// and block in syscalls, so they get threads of their own rather than tasks). `body` is
/// `sending`: what it captures moves to the new thread, and the compiler refuses a capture the
/// caller still uses (the vCPU's own devices go to its thread this way). Each thread first
/// faults in the top `prefaultedStack` bytes of its stack at once: a page fault costs a few µs on
/// these machines, and a migration's switch-over touched fresh stack on every thread it crossed.
public enum NativeThread {
    static let prefaultedStack = 128 * 1024

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }

        func run() {
            NativeThread.prefaultStack()
            body()
        }
    }

    public static func start(name: String, _ body: sending @escaping () -> Void) throws(SystemCallError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.run()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemCallError("pthread_create \(name)", errno: result)
        }
        pthread_detach(thread)
    }

    /// MADV_POPULATE_WRITE on the stack below this frame (a thread's stack is an ordinary mapping).
    /// Only a speed-up: a kernel without it (before Linux 5.14) answers EINVAL and the pages fault
    /// in on first use as before.
    fileprivate static func prefaultStack() {
        var marker = 0
        let here = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        let pageMask = ~UInt(sysconf(Int32(_SC_PAGESIZE)) - 1)
        let end = here & pageMask
        let start = (here - UInt(prefaultedStack)) & pageMask
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_POPULATE_WRITE)
    }
}
