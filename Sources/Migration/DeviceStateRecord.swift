/// One device's state as it travels: the Machine's StateSection, without depending on how
/// the Machine lays it out.
public struct DeviceStateRecord: Sendable, Equatable {
    public let id: SectionID
    public let version: UInt32
    public let payload: [UInt8]

    public init(id: SectionID, version: UInt32, payload: [UInt8]) {
        self.id = id
        self.version = version
        self.payload = payload
    }
}
