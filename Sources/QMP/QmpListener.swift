import Loop
import Glibc

/// A listening QMP socket (`-qmp unix:PATH,server=on,wait=off` or `tcp:HOST:PORT`): Loop's
/// Socket, the unix socket file with mode 0600 as svmm's README promises.
final class QmpListener {
    let fd: Int32

    init(address: SocketAddress) throws(QmpError) {
        do { fd = try Socket.listen(address, permissions: 0o600).fd } catch { throw QmpError(error) }
    }

    /// Takes every pending connection; `outOfDescriptors` when one is left waiting because the
    /// process has no file descriptor for it (it stays readable, so it must not be watched).
    func acceptAll() -> (clients: [Int32], outOfDescriptors: Bool) {
        var clients: [Int32] = []
        while true {
            switch Socket.accept(fd) {
            case .connection(let client): clients.append(client)
            case .none: return (clients, false)
            case .outOfDescriptors: return (clients, true)
            }
        }
    }
}
