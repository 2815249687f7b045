/// A blkdebug config file that cannot be used: QEMU 7.2's text as the description, and the
/// line it is about (1-based; 0 when it is about the file as a whole).
public struct BlkdebugConfigError: Error, CustomStringConvertible, Equatable {
    public let line: Int
    public let message: String

    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { message }
}
