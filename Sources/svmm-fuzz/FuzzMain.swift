import FuzzTargets
import Glibc

/// libFuzzer's entry (built only with `-sanitize=fuzzer`, which brings `main`). One binary holds
/// every target, chosen by `FUZZ_TARGET`, so the sanitized build links once.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    if selected == nil {
        let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let message = "svmm-fuzz: set FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n"
            _ = write(2, message, message.utf8.count)
            exit(2)
        }
        selected = target
    }
    let data = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    selected?.run(data)
    return 0
}

/// libFuzzer's own driver (its `main` is just a call to this).
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<Int32>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                       _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM links an executable's `main` to `<module>_main` (so that tests can link the module), which
/// shadows the `main` in libFuzzer's archive: provide that symbol and hand over to libFuzzer's driver.
@_cdecl("svmm_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments, fuzzOneInput)
}
