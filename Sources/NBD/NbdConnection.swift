import Block
import Glibc

/// A socket on which the NBD handshake is done (`NbdClientDriver.negotiate`), not yet on a loop.
public struct NbdConnection: Sendable {
    public let options: NbdClientOptions
    let fd: Int32
    public let info: NbdExportInfo

    /// For a connection nobody adopts (another one of the same blockdev-add failed).
    public func close() { Glibc.close(fd) }
}
