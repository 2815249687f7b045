/// What a record of the migration stream carries.
public enum StreamRecordType: UInt8, Sendable, CustomStringConvertible {
    /// RAM size and the device sections the source will send (checked before any page).
    case machine = 1
    /// Page entries.
    case ram = 2
    /// One pass over the dirty pages is complete (QEMU's RAM_SAVE_FLAG_EOS).
    case ramEndOfIteration = 3
    /// One device's state section (Machine.saveState), by name and instance.
    case device = 4
    /// The source's run state when it stopped (QEMU's "globalstate" section).
    case globalState = 5
    /// The stream is complete.
    case end = 6
    /// A dirty bitmap's start, bits or completion (QEMU's "dirty-bitmap" section, DirtyBitmapRecord).
    case dirtyBitmap = 7
    /// Postcopy: RAM and devices are complete, the destination may run; dirty bitmaps follow.
    case postcopyRun = 8

    public var description: String {
        switch self {
        case .machine: "machine"
        case .ram: "ram"
        case .ramEndOfIteration: "ram end-of-iteration"
        case .device: "device"
        case .globalState: "globalstate"
        case .end: "end"
        case .dirtyBitmap: "dirty-bitmap"
        case .postcopyRun: "postcopy-run"
        }
    }
}
