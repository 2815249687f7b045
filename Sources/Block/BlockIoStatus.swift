/// BlockDeviceIoStatus: what `query-block` shows as `io-status` for a device that stops on errors.
public enum BlockIoStatus: String, Sendable {
    case ok, failed, nospace
}
