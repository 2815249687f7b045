/// A migration stream the destination refuses (or cannot read), with where and why: the
/// section's name and the stream offset of the record, so a corrupt file can be looked at.
public struct StreamError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// A fault inside one record.
    static func inRecord(_ name: String, instance: UInt32, offset: Int, _ problem: String) -> StreamError {
        StreamError("migration stream: section '\(name)' (instance \(instance)) at offset \(offset): \(problem)")
    }

    /// A fault in the framing itself (header, record type, name), before a section is known.
    static func at(_ offset: Int, _ problem: String) -> StreamError {
        StreamError("migration stream at offset \(offset): \(problem)")
    }
}
