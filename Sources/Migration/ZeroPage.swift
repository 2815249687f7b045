import Glibc

/// Finds all-zero pages (QEMU's buffer_is_zero) with libc's memcmp against a zero page.
enum ZeroPage {
    nonisolated(unsafe) private static let zeroes: UnsafeMutableRawPointer = {
        let page = UnsafeMutableRawPointer.allocate(byteCount: MigrationStream.pageSize, alignment: 4096)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: MigrationStream.pageSize)
        return page
    }()

    static var page: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: zeroes, count: MigrationStream.pageSize) }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset < bytes.count {
            let piece = min(bytes.count - offset, MigrationStream.pageSize)
            if memcmp(base + offset, zeroes, piece) != 0 { return false }
            offset += piece
        }
        return true
    }
}
