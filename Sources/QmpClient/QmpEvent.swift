import QmpJSON

/// One asynchronous QMP event: `{"event": NAME, "data": {...}, "timestamp": {...}}`.
public struct QmpEvent: Equatable, Sendable {
    public let name: String
    /// The event's `data`, or an empty object when it has none (`STOP`, `RESUME`).
    public let data: JSONValue
    /// Seconds since the epoch as the VMM stamped it (QEMU's `timestamp`), -1 when it could not.
    public let timestamp: Double

    public init(name: String, data: JSONValue, timestamp: Double) {
        self.name = name
        self.data = data
        self.timestamp = timestamp
    }

    /// Reads an event message; nil when the message is not one.
    init?(message: JSONValue) {
        guard let name = message["event"]?.stringValue else { return nil }
        self.name = name
        self.data = message["data"] ?? .emptyObject
        var seconds = -1.0
        if let stamp = message["timestamp"], let whole = stamp["seconds"]?.intValue, let micro = stamp["microseconds"]?.intValue {
            seconds = Double(whole) + Double(micro) / 1e6
        }
        self.timestamp = seconds
    }
}
