import Glibc

/// drive-mirror's image creation in mode `absolute-paths` (bdrv_img_create): a raw file of the
/// source's size, or a qcow2 image naming the backing file the target gets at completion.
/// Written with plain blocking I/O before the node is opened, as qemu-img would.
public final class MirrorTargetImage: SyncBlockIO {
    private let fd: Int32

    private init(path: String) throws(BlockError) {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BlockError.posix("Could not create '\(path)'", errno: errno) }
    }

    deinit { close(fd) }

    public static func create(path: String, format: String, size: Int64, backingFile: String?, backingFormat: String?) throws(BlockError) {
        guard size >= 0 else { throw BlockError("Invalid image size specified", errno: EINVAL) }
        let image = try MirrorTargetImage(path: path)
        switch format {
        case "raw": try image.truncateSync(to: size)
        case "qcow2": try Qcow2Driver.create(on: image, size: size, backingFile: backingFile, backingFormat: backingFormat)
        default: throw BlockError("Unknown file format '\(format)'", errno: EINVAL)
        }
        try image.flushSync()
    }

    public func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let done = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, Int(offset)) }
        guard done >= 0 else { throw BlockError.posix("pread", errno: errno) }
        return bytes
    }

    public func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError) {
        let done = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes.count, Int(offset)) }
        guard done == bytes.count else { throw BlockError.posix("pwrite", errno: done < 0 ? errno : EIO) }
    }

    public func flushSync() throws(BlockError) {
        guard fsync(fd) == 0 else { throw BlockError.posix("fsync", errno: errno) }
    }

    public func truncateSync(to length: Int64) throws(BlockError) {
        guard ftruncate(fd, Int(length)) == 0 else { throw BlockError.posix("ftruncate", errno: errno) }
    }
}
