import Glibc

/// Starts a detached POSIX thread running `body` (vCPU and event-loop threads are long-lived
/// and block in syscalls, so they get threads of their own rather than tasks). `body` is
/// `sending`: what it captures moves to the new thread, and the compiler refuses a capture the
/// caller still uses (the vCPU's own devices go to its thread this way).
public enum NativeThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    public static func start(name: String, _ body: sending @escaping () -> Void) throws(SystemCallError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemCallError("pthread_create \(name)", errno: result)
        }
        pthread_detach(thread)
    }
}
