/// Option reply types; errors have bit 31 set.
public enum NbdOptionReply {
    public static let ack: UInt32 = 1
    public static let server: UInt32 = 2
    public static let info: UInt32 = 3
    public static let metaContext: UInt32 = 4
    public static let errorBit: UInt32 = 1 << 31
    public static let errUnsupported: UInt32 = errorBit | 1
    public static let errPolicy: UInt32 = errorBit | 2
    public static let errInvalid: UInt32 = errorBit | 3
    public static let errPlatform: UInt32 = errorBit | 4
    public static let errTLSRequired: UInt32 = errorBit | 5
    public static let errUnknown: UInt32 = errorBit | 6
    public static let errShutdown: UInt32 = errorBit | 7
    public static let errBlockSizeRequired: UInt32 = errorBit | 8

    public static func isError(_ type: UInt32) -> Bool { type & errorBit != 0 }

    /// NBD_INFO_* types inside an INFO reply.
    public static let infoExport: UInt16 = 0
    public static let infoName: UInt16 = 1
    public static let infoDescription: UInt16 = 2
    public static let infoBlockSize: UInt16 = 3
}
