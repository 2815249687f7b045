import Machine

/// The destination's guest RAM as the loader's sink (pages land before the vCPU first runs).
/// The destination's RAM is fresh (Machine.start(incoming:) loads no kernel and nothing runs
/// before the stream is in), so a zero page the stream never wrote is already zero.
final class MachineRam: RamSink {
    let ram: GuestRam
    /// Pages this stream wrote data into (one bit a page).
    private var written: [UInt64]

    init(ram: GuestRam) {
        self.ram = ram
        written = [UInt64](repeating: 0, count: (ram.pageCount + 63) / 64)
    }

    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) {
        do { try ram.writePage(index, from: bytes) } catch { throw StreamError(error.description) }
        markWritten(index)
    }

    private func markWritten(_ index: Int) {
        if index >= 0 && index / 64 < written.count { written[index / 64] |= 1 << UInt64(index % 64) }
    }

    /// Whole pages only (a RAM size that is not a multiple of 4 KiB takes the copying path).
    var receivesInPlace: Bool { ram.size % MigrationStream.pageSize == 0 }

    /// The guest's page itself: the decoder reads the stream's bytes into it and checks the
    /// record's checksum afterwards. A corrupt record has then written RAM, which is fine: the
    /// VM has not run yet, and the failed load ends this destination.
    func pageBuffer(_ index: Int) throws(StreamError) -> UnsafeMutableRawBufferPointer {
        let page: UnsafeMutableRawBufferPointer
        do { page = try ram.page(index) } catch { throw StreamError(error.description) }
        guard page.count == MigrationStream.pageSize else { throw StreamError("RAM page \(index) is \(page.count) bytes, not a whole page") }
        markWritten(index)
        return page
    }

    /// ram_handle_compressed: a page never written is left alone (not even read, so fresh RAM is
    /// not faulted in page by page); one written before is looked at in place and cleared if not zero.
    func zeroPage(_ index: Int) throws(StreamError) {
        guard index >= 0, index / 64 < written.count, written[index / 64] & (1 << UInt64(index % 64)) != 0 else { return }
        let isZero: Bool
        do { isZero = try ram.pageIsZero(index) } catch { throw StreamError(error.description) }
        if !isZero { try writePage(index, from: ZeroPage.page) }
    }
}
