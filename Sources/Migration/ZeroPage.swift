import Glibc

/// A page of zeroes, written over a page the stream had filled before (GuestRam.isZero finds the
/// zero pages, as QEMU's buffer_is_zero).
enum ZeroPage {
    nonisolated(unsafe) private static let zeroes: UnsafeMutableRawPointer = {
        let page = UnsafeMutableRawPointer.allocate(byteCount: MigrationStream.pageSize, alignment: 4096)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: MigrationStream.pageSize)
        return page
    }()

    static var page: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: zeroes, count: MigrationStream.pageSize) }
}
