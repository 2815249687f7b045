/// Everything a complete stream delivered besides the pages already written to RAM.
public struct LoadedStream: Sendable {
    public var source: MachineDescription
    public var devices: [DeviceStateRecord] = []
    /// The source's run state when it stopped (`running`, `paused`, …).
    public var sourceRunState = ""
    public var pages = 0
    public var zeroPages = 0
    public var iterations = 0
    /// The stream stopped at `postcopy-run`: the VM may start, dirty bitmaps follow.
    public var postcopy = false
}
