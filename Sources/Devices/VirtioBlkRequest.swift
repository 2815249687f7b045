/// virtio-blk request constants (virtio 1.x, section 5.2.6).
public enum VirtioBlkRequest {
    public static let headerSize: UInt64 = 16
    public static let idBytes = 20

    public enum Kind: UInt32 {
        case read = 0, write = 1, flush = 4, getID = 8, discard = 11, writeZeroes = 13
    }

    public enum Status: UInt8 {
        case ok = 0, ioError = 1, unsupported = 2
    }

    public enum Feature {
        public static let segmentMax: UInt64 = 1 << 2
        public static let readOnly: UInt64 = 1 << 5
        public static let blockSize: UInt64 = 1 << 6
        public static let flush: UInt64 = 1 << 9
        public static let discard: UInt64 = 1 << 13
        public static let writeZeroes: UInt64 = 1 << 14
    }
}
