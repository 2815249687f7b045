/// Per-export transmission flags, sent with the export size.
public struct NbdTransmissionFlags: OptionSet, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let hasFlags = NbdTransmissionFlags(rawValue: 1 << 0)
    public static let readOnly = NbdTransmissionFlags(rawValue: 1 << 1)
    public static let sendFlush = NbdTransmissionFlags(rawValue: 1 << 2)
    public static let sendFUA = NbdTransmissionFlags(rawValue: 1 << 3)
    public static let rotational = NbdTransmissionFlags(rawValue: 1 << 4)
    public static let sendTrim = NbdTransmissionFlags(rawValue: 1 << 5)
    public static let sendWriteZeroes = NbdTransmissionFlags(rawValue: 1 << 6)
    public static let sendDF = NbdTransmissionFlags(rawValue: 1 << 7)
    public static let canMultiConn = NbdTransmissionFlags(rawValue: 1 << 8)
    public static let sendResize = NbdTransmissionFlags(rawValue: 1 << 9)
    public static let sendCache = NbdTransmissionFlags(rawValue: 1 << 10)
    public static let sendFastZero = NbdTransmissionFlags(rawValue: 1 << 11)
}
