/// A device state section's identity: QEMU's idstr and instance_id.
public struct SectionID: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public let instance: UInt32

    public init(name: String, instance: UInt32) {
        self.name = name
        self.instance = instance
    }

    public var description: String { "'\(name)' \(instance)" }
}
