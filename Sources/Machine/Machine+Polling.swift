import Block
import Devices

/// `-device virtio-blk-device,iothread=ID` with `-object iothread,id=ID,poll-max-ns=N,...`: the
/// loop busy-polls the device's queue and the AIO completion ring before it blocks, with the
/// iothread's adaptive window (LoopPollGroup; QEMU's aio_poll in that iothread). poll-max-ns=0
/// turns polling off, as in QEMU.
extension Machine {
    /// virtio_blk_device_realize's iothread link: the object must exist.
    func checkIothread(_ device: MachineConfig.VirtioBlkConfig) throws(BlockError) {
        guard let id = device.iothread else { return }
        guard config.iothreads.contains(where: { $0.id == id }) else { throw BlockError("Device '\(id)' not found") }
    }

    func addPolling(_ device: MachineConfig.VirtioBlkConfig, _ blk: VirtioBlk, _ transport: VirtioMmioTransport) {
        guard let id = device.iothread, let iothread = config.iothreads.first(where: { $0.id == id }),
              iothread.pollMaxNanoseconds > 0 else { return }
        let group: LoopPollGroup
        if let existing = pollGroups[id] {
            group = existing
        } else {
            group = loop.addPollGroup(maxNanoseconds: iothread.pollMaxNanoseconds, grow: iothread.pollGrow,
                                      shrink: iothread.pollShrink)
            pollGroups[id] = group
            // The file nodes' native AIO completions (qemu_laio_poll_cb); aio=threads is not polled.
            group.add(poll: { [aio] in aio.pollCompletions() })
        }
        group.add(poll: { [blk, transport] in transport.pollQueue(0) { blk.hasAvailableRequests } },
                  begin: { [blk] in blk.beginPolling() },
                  end: { [blk, transport] in
                      blk.endPolling()
                      transport.notify(queue: 0)
                  })
    }
}
