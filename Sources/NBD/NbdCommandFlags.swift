/// Per-request command flags.
public struct NbdCommandFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let fua = NbdCommandFlags(rawValue: 1 << 0)
    public static let noHole = NbdCommandFlags(rawValue: 1 << 1)
    public static let dontFragment = NbdCommandFlags(rawValue: 1 << 2)
    public static let requestOne = NbdCommandFlags(rawValue: 1 << 3)
    public static let fastZero = NbdCommandFlags(rawValue: 1 << 4)
}
