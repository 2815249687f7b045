/// What can go wrong talking to a QMP monitor; each case names what the caller was doing.
public enum QmpClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The socket could not be reached (`connect` failed, the name does not resolve).
    case unreachable(address: String, reason: String)
    /// The peer closed the connection (or reading from it failed).
    case disconnected(address: String, reason: String)
    /// The peer sent something that is not QMP (no greeting, a reply that is not an object).
    case protocolViolation(address: String, reason: String)
    /// Nothing came within the time allowed.
    case timedOut(address: String, waitingFor: String, seconds: Double)
    /// The command ran and QEMU's monitor answered `{"error": {"class", "desc"}}`.
    case commandFailed(command: String, errorClass: String, desc: String)

    public var description: String {
        switch self {
        case .unreachable(let address, let reason): "cannot connect to QMP socket \(address): \(reason)"
        case .disconnected(let address, let reason): "QMP connection \(address) lost: \(reason)"
        case .protocolViolation(let address, let reason): "QMP peer \(address) does not speak QMP: \(reason)"
        case .timedOut(let address, let what, let seconds): "timed out after \(Self.format(seconds)) s waiting for \(what) on \(address)"
        case .commandFailed(let command, let errorClass, let desc): "\(command): \(desc) (\(errorClass))"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
