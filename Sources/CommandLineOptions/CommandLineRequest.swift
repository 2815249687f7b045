import Machine

/// What the command line asks for: a machine to run, or only a text (QEMU's -version, -help/-h,
/// which print and exit 0 as soon as they are met, options after them unread).
public enum CommandLineRequest {
    case run(MachineConfig)
    case version
    case help
    /// A `help` value (`-machine help`, `-drive format=help`, `-device help`): print it to stdout, exit 0.
    case information(String)
}
