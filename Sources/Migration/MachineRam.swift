import Machine

/// The destination's guest RAM as the loader's sink (pages land before the vCPU first runs).
struct MachineRam: RamSink {
    let machine: Machine

    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) {
        do { try machine.writeRamPage(index, from: bytes) } catch { throw StreamError(error.description) }
    }
}
