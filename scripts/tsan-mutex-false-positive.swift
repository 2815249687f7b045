// ThreadSanitizer does not see Swift's Synchronization.Mutex (on Linux a futex the prebuilt
// library drives with uninstrumented atomics): two threads that touch an array only inside
// `withLock` are reported as a "Swift access race". Run it:
//   swiftc -sanitize=thread -swift-version 6 scripts/tsan-mutex-false-positive.swift -o /tmp/m && /tmp/m
// (Swift 6.3 here reports the race and prints `done`). scripts/tsan.supp names the one place in
// svmm where only such a Mutex orders two threads (the aio=threads completion list).
import Glibc
import Synchronization

final class Box: Sendable { let list = Mutex<[Int]>([]) }

func worker(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let box = Unmanaged<Box>.fromOpaque(raw!).takeUnretainedValue()
    for i in 0..<200_000 { box.list.withLock { $0.append(i); if $0.count > 10 { $0.removeAll() } } }
    return nil
}

func run() {
    let box = Box()
    var threads: [pthread_t] = []
    for _ in 0..<2 {
        var t = pthread_t()
        pthread_create(&t, nil, { worker($0) }, Unmanaged.passUnretained(box).toOpaque())
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
    print("done", box.list.withLock { $0.count })
}
run()
