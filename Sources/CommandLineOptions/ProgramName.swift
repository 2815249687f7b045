/// The name svmm was started as (argv[0]'s basename), which error lines and the usage text use,
/// as QEMU's error_report does: through a symlink or wrapper (QEMU_PROG) they name that.
public enum ProgramName {
    public static var basename: String {
        let path = CommandLine.arguments.first ?? "svmm"
        return path.split(separator: "/").last.map(String.init) ?? path
    }
}
