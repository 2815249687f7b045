import Glibc

/// Lines for svmm's stderr (QEMU's error_report), with the program's name.
enum Console {
    static func report(_ line: String) {
        let text = "svmm: \(line)\n"
        _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}
