/// `-object iothread,id=ID[,poll-max-ns=N][,poll-grow=N][,poll-shrink=N]`: QEMU's IOThread
/// object and its polling properties (defaults as QEMU 7.2's iothread.c: poll-max-ns 32768,
/// grow and shrink 0). svmm has one event loop: a device with `iothread=ID` still runs there, and
/// the loop busy-polls that device's queue and the AIO completions as the iothread would
/// (LoopPollGroup). An iothread no device names changes nothing, as in QEMU.
public struct IothreadConfig: Sendable, Equatable {
    public static let defaultPollMaxNanoseconds: Int64 = 32768
    public var id: String
    public var pollMaxNanoseconds: Int64 = IothreadConfig.defaultPollMaxNanoseconds
    public var pollGrow: Int64 = 0
    public var pollShrink: Int64 = 0

    public init(id: String) {
        self.id = id
    }
}
