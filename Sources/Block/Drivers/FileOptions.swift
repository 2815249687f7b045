/// Options of the `file` driver, as `-blockdev driver=file,...` spells them.
public struct FileOptions: Equatable, Sendable {
    public enum AioMode: String, Sendable { case native, threads }

    public var filename: String
    public var readOnly = false
    /// `cache.direct`: O_DIRECT, bypassing the host page cache.
    public var directIO = true
    public var aio: AioMode = .native
    /// `locking=on|off|auto`: OFD image locks (auto means on, as Linux has them).
    public var locking = true

    public init(filename: String) { self.filename = filename }
}
