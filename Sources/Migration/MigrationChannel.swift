import CKVM
import Glibc
import Loop

/// The byte pipe a migration runs over: a connected socket (both directions: the stream one way,
/// the destination's verdict back), or a child process's stdin/stdout for `exec:`. Used by one
/// migration thread at a time; `abort` may come from the loop to unblock it.
final class MigrationChannel: @unchecked Sendable {  // fds fixed at creation; abort only shuts down/kills
    /// Where the stream goes (source) or -1 (destination).
    let output: Int32
    /// Where the stream comes from (destination) or the return channel (source); -1 if none.
    let input: Int32
    let child: pid_t?
    let isSocket: Bool
    /// exec: the command's stdin is still open (closed once, by finishWriting or close).
    private var outputOpen: Bool
    /// Bytes of a verdict line read so far.
    private var pendingLine: [UInt8] = []

    private init(output: Int32, input: Int32, child: pid_t?, isSocket: Bool) {
        self.output = output
        self.input = input
        self.child = child
        self.isSocket = isSocket
        outputOpen = output >= 0
    }

    // MARK: outgoing

    /// The source's side: connect, or start the command with the stream on its stdin.
    static func connect(_ uri: MigrationUri) throws(MigrationError) -> MigrationChannel {
        switch uri {
        case .socket(let address):
            // Loop's blocking connect: every address the name resolves to, QEMU's error texts.
            let fd: Int32
            do { fd = try Socket.connect(address) } catch { throw MigrationError(error) }
            return MigrationChannel(output: fd, input: fd, child: nil, isSocket: true)
        case .exec(let command):
            let (child, toChild, fromChild) = try spawn(command, streamOnStdin: true)
            return MigrationChannel(output: toChild, input: fromChild, child: child, isSocket: false)
        }
    }

    /// The destination's side of `exec:`: the command's stdout is the stream.
    static func incoming(exec command: String) throws(MigrationError) -> MigrationChannel {
        let (child, _, fromChild) = try spawn(command, streamOnStdin: false)
        return MigrationChannel(output: -1, input: fromChild, child: child, isSocket: false)
    }

    /// The destination's side of an accepted (blocking) connection.
    static func accepted(_ fd: Int32) -> MigrationChannel {
        MigrationChannel(output: fd, input: fd, child: nil, isSocket: true)
    }

    /// `/bin/sh -c command`, as QEMU's exec: migration runs it. Returns (pid, fd to its stdin or -1,
    /// fd from its stdout).
    private static func spawn(_ command: String, streamOnStdin: Bool) throws(MigrationError) -> (pid_t, Int32, Int32) {
        // A reader that went away must be an error on write, not a signal that ends svmm.
        signal(SIGPIPE, SIG_IGN)
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        guard makePipe(&fromChild) else { throw MigrationError("exec: pipe: \(String(cString: strerror(errno)))") }
        if streamOnStdin, !makePipe(&toChild) {
            Glibc.close(fromChild[0]); Glibc.close(fromChild[1])
            throw MigrationError("exec: pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if streamOnStdin { posix_spawn_file_actions_adddup2(&actions, toChild[0], 0) } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, environ)
        Glibc.close(fromChild[1])
        if streamOnStdin { Glibc.close(toChild[0]) }
        guard result == 0 else {
            Glibc.close(fromChild[0])
            if streamOnStdin { Glibc.close(toChild[1]) }
            throw MigrationError("Failed to spawn '\(command)': \(String(cString: strerror(result)))")
        }
        return (pid, streamOnStdin ? toChild[1] : -1, fromChild[0])
    }

    /// pipe2(O_CLOEXEC), which glibc hides behind _GNU_SOURCE: the child gets only what dup2 gives it.
    private static func makePipe(_ ends: inout [Int32]) -> Bool {
        guard pipe(&ends) == 0 else { return false }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    // MARK: I/O

    /// Writes all of `bytes`; a peer that went away is an error naming why.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(MigrationError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let count = isSocket ? send(output, base + done, bytes.count - done, Int32(MSG_NOSIGNAL))
                                 : write(output, base + done, bytes.count - done)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw writeError(returned: count) }
            done += count
        }
    }

    /// A write that returned `count` (-1 with errno, or 0) in QIOChannelSocket's and
    /// QIOChannelCommand's words; call it before anything else can change errno.
    func writeError(returned count: Int) -> MigrationError {
        MigrationError("Unable to write to \(isSocket ? "socket" : "command"): \(String(cString: strerror(count < 0 ? errno : EPIPE)))")
    }

    /// Reads into `buffer` (the destination's stream input); 0 at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        while true {
            let count = Glibc.read(input, base, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw StreamError("reading the migration stream: \(String(cString: strerror(errno)))") }
            return count
        }
    }

    /// One line from the peer (the destination's verdict), waiting at most `timeoutMilliseconds`
    /// (0: only what has arrived); nil if the channel closes or stays silent. A partial line is
    /// kept for the next call.
    func readLine(timeoutMilliseconds: Int32) -> String? {
        guard input >= 0 else { return nil }
        var byte: UInt8 = 0
        while pendingLine.count < 4096 {
            var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, timeoutMilliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return nil }
            let count = Glibc.read(input, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return takeLine() }
            if byte == UInt8(ascii: "\n") { return takeLine() }
            pendingLine.append(byte)
        }
        return takeLine()
    }

    private func takeLine() -> String? {
        guard !pendingLine.isEmpty else { return nil }
        defer { pendingLine.removeAll() }
        return String(decoding: pendingLine, as: UTF8.self)
    }

    /// The destination after refusing: its verdict is out; it reads (and drops) what the source
    /// still sends for a moment, so closing does not reset the connection under the verdict.
    func drainBeforeClose(milliseconds: Int32) {
        guard isSocket else { return }
        shutdown(output, Int32(SHUT_WR))
        var scratch = [UInt8](repeating: 0, count: 65536)
        let deadline = MonotonicClock.milliseconds + Int64(milliseconds)
        while MonotonicClock.milliseconds < deadline {
            var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 50) >= 0 else { return }
            if descriptor.revents == 0 { continue }
            let count = scratch.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
            if count <= 0 { return }
        }
    }

    /// The destination's verdict back to the source (sockets only).
    func sendVerdict(_ line: String) {
        guard isSocket, output >= 0 else { return }
        let bytes = Array(line.utf8).map { $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0 } + [UInt8(ascii: "\n")]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        try? writeAll(UnsafeRawBufferPointer(buffer))
    }

    /// The source is done writing: the peer sees the end of the stream (exec: the command's stdin closes).
    func finishWriting() {
        if isSocket { shutdown(output, Int32(SHUT_WR)) } else { closeOutput() }
    }

    /// The exit status of the exec: command (waits for it); nil for sockets.
    func waitForChild() -> Int32? {
        guard let child else { return nil }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift cannot import as macros.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Unblocks a thread stuck writing or reading (cancel, or the loop giving up on the peer).
    func abort() {
        if isSocket {
            shutdown(output, Int32(SHUT_RDWR))
        } else if let child {
            kill(child, SIGTERM)
        }
    }

    private func closeOutput() {
        guard outputOpen else { return }
        outputOpen = false
        Glibc.close(output)
    }

    func close() {
        if isSocket {
            Glibc.close(output)
        } else {
            closeOutput()
            if input >= 0 { Glibc.close(input) }
        }
    }
}
