import Glibc

/// Runs qemu-io commands on a BlockBackend, as HMP's `qemu-io` does (qemuio_command): what the
/// command needs is added to the backend's permissions and stays (as in QEMU), output goes to
/// `print` (stdout) and `printError` (stderr). Synchronous commands call `done` when they end;
/// `aio_*` ones end at once and print when their request completes; `aio_flush` waits for them.
/// Lives on the event-loop thread.
public final class QemuIoRunner {
    public var print: (String) -> Void = { text in QemuIoRunner.write(text, to: STDOUT_FILENO) }
    public var printError: (String) -> Void = { text in QemuIoRunner.write(text, to: STDERR_FILENO) }
    private var aioInFlight = 0
    private var aioWaiters: [() -> Void] = []

    public init() {}

    public func run(_ line: String, on backend: BlockBackend, done: @escaping () -> Void) {
        let command: QemuIoCommand
        do {
            guard let parsed = try QemuIoCommand.parse(line) else { return done() }
            command = parsed
        } catch {
            if error.isError { printError(error.output) } else { print(error.output) }
            return done()
        }
        switch command {
        case .flush:
            backend.flush { _ in done() }
        case .aioFlush:
            whenAioIdle(done)
        case .read(let offset, let length, let pattern, let quiet, let async):
            transfer(backend, isWrite: false, offset: offset, length: length, async: async, done: done) { [self] buffer, seconds in
                if let pattern, let mismatch = buffer.firstIndex(where: { $0 != pattern }) {
                    print("Pattern verification failed at offset \(offset + Int64(mismatch)), \(length) bytes\n")
                }
                if !quiet { print(QemuIoReport.transfer("read", offset: offset, length: length, seconds: seconds)) }
            }
        case .write(let offset, let length, let pattern, let zeroes, let unmap, let quiet, let async):
            guard extend(backend, with: .write) else { return done() }
            transfer(backend, isWrite: true, offset: offset, length: length, async: async, fill: zeroes ? nil : pattern,
                     unmap: unmap, done: done) { [self] _, seconds in
                if !quiet { print(QemuIoReport.transfer("wrote", offset: offset, length: length, seconds: seconds)) }
            }
        }
    }

    /// command()'s blk_set_perm: the command's permission is added, and a conflict is printed.
    private func extend(_ backend: BlockBackend, with needed: BlockPermission) -> Bool {
        guard !backend.perm.isSuperset(of: needed) else { return true }
        do {
            try backend.setPerm(backend.perm.union(needed), shared: backend.sharedPerm)
            return true
        } catch {
            printError("\(error.description)\n")
            return false
        }
    }

    /// One request of `length` bytes (a write of `fill` bytes, or of zeroes when `fill` is nil);
    /// `report` gets the data and the time it took when it worked.
    private func transfer(_ backend: BlockBackend, isWrite: Bool, offset: Int64, length: Int64, async: Bool,
                          fill: UInt8? = 0, unmap: Bool = false, done: @escaping () -> Void,
                          report: @escaping (UnsafeMutableRawBufferPointer, Double) -> Void) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(Int(length), 1), alignment: 4096)
        let data = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(length)])
        if let fill { data.initializeMemory(as: UInt8.self, repeating: fill) }
        let start = Self.now()
        if async { aioInFlight += 1 }
        let finished: IoCompletion = { [self] result in
            withExtendedLifetime(backend) {}  // a temporary backend (HMP on a node) lives until its request ends
            switch result {
            case .success: report(data, Self.now() - start)
            case .failure(let error): print("\(isWrite ? "write" : "read") failed: \(String(cString: strerror(error.errno)))\n")
            }
            buffer.deallocate()
            if async { aioFinished() } else { done() }
        }
        if !isWrite {
            backend.read(at: offset, into: IoVector(data), completion: finished)
        } else if fill == nil {
            backend.writeZeroes(at: offset, length: length, mayUnmap: unmap, completion: finished)
        } else {
            backend.write(at: offset, from: IoVector(data), completion: finished)
        }
        if async { done() }
    }

    private func aioFinished() {
        aioInFlight -= 1
        guard aioInFlight == 0 else { return }
        let waiters = aioWaiters
        aioWaiters.removeAll()
        waiters.forEach { $0() }
    }

    private func whenAioIdle(_ action: @escaping () -> Void) {
        if aioInFlight == 0 { return action() }
        aioWaiters.append(action)
    }

    /// Unbuffered, as the guest's serial output shares stdout.
    static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return }
            bytes = bytes.dropFirst(count)
        }
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
