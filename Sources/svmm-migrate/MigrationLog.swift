import Glibc

/// What the user sees: one line a step on stdout; on stderr the live progress line (rewritten in
/// place when stderr is a terminal; otherwise plain lines every few seconds and at each phase
/// change) and refusals.
final class MigrationLog {
    private let terminal = isatty(STDERR_FILENO) == 1
    private var progressShown = false
    private var lastPlainLine = ""
    private var lastMilestone = ""
    private var lastPlainTime = 0.0
    private let plainInterval: Double

    init(plainInterval: Double = 2) { self.plainInterval = plainInterval }

    func step(_ text: String) {
        clearProgress()
        emit(STDOUT_FILENO, text + "\n")
    }

    /// A finding worth reading on its own (the early resume, the permission check).
    func report(_ text: String) { step("svmm-migrate: \(text)") }

    func refusal(_ text: String) {
        clearProgress()
        emit(STDERR_FILENO, "svmm-migrate: \(text)\n")
    }

    func progress(_ sample: MigrationProgress, now: Double) {
        let line = sample.line
        if terminal {
            emit(STDERR_FILENO, "\r\u{1b}[K\(line)")
            progressShown = true
        } else if line != lastPlainLine, now - lastPlainTime >= plainInterval || sample.milestone != lastMilestone {
            // Plain lines (a log, a pipe): every few seconds, and whenever a phase changes.
            emit(STDERR_FILENO, "\(line)\n")
            lastPlainLine = line
            lastPlainTime = now
            lastMilestone = sample.milestone
        }
    }

    /// Ends the live line where it is (as virsh leaves its last figure on screen), so the next
    /// line starts on a fresh row.
    func clearProgress() {
        guard progressShown else { return }
        emit(STDERR_FILENO, "\n")
        progressShown = false
    }

    /// write(2) straight to the descriptor: unbuffered, so stdout and stderr interleave in order.
    private func emit(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
