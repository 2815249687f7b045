import Machine

/// The destination's guest RAM as the loader's sink (pages land before the vCPU first runs).
final class MachineRam: RamSink {
    let machine: Machine
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: MigrationStream.pageSize, alignment: 4096)

    init(machine: Machine) { self.machine = machine }
    deinit { scratch.deallocate() }

    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) {
        do { try machine.writeRamPage(index, from: bytes) } catch { throw StreamError(error.description) }
    }

    /// ram_handle_compressed: a page that already reads as zero is not written, so the fresh
    /// destination's untouched RAM is not faulted in page by page.
    func zeroPage(_ index: Int) throws(StreamError) {
        do { try machine.readRamPage(index, into: scratch) } catch { throw StreamError(error.description) }
        if ZeroPage.isZero(UnsafeRawBufferPointer(scratch)) { return }
        try writePage(index, from: ZeroPage.page)
    }
}
