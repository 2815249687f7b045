import Machine

/// What the command line asks for: a machine to run, or only a text (QEMU's -version, -help/-h,
/// which print and exit 0 as soon as they are met, options after them unread).
public enum CommandLineRequest {
    case run(MachineConfig)
    case version
    case help
}
