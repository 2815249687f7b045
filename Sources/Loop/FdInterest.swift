/// The readiness a file descriptor is watched for and reported with (epoll's IN, OUT, HUP/ERR/RDHUP).
public struct FdInterest: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = FdInterest(rawValue: 1)
    public static let writable = FdInterest(rawValue: 2)
    public static let hangup = FdInterest(rawValue: 4)
}
