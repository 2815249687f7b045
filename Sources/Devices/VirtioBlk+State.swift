extension VirtioBlk {
    /// How the device is named in errors: its id, as QEMU names a qdev.
    var stateName: String { id.map { "'\($0)'" } ?? "(anonymous)" }

    public var requestsInFlight: Int { inFlight }

    /// Refuses while requests are in flight, naming the device: drain its backend first.
    public func save() throws(DeviceStateError) -> VirtioBlkState {
        guard inFlight == 0 else {
            throw DeviceStateError(section: VirtioBlkState.sectionName, field: "in_flight",
                                   "virtio-blk \(stateName) has \(inFlight) requests in flight: drain before saving its state")
        }
        // The requests an error stopped go with the state, as QEMU's s->rq (virtio_blk_save_device).
        return VirtioBlkState(capacitySectors: capacitySectors, deviceFeatures: deviceFeatures, serial: serial,
                              failedRequests: failedRequests.map(savedRequest))
    }

    /// The destination's disk and options must give the driver the same device it negotiated with.
    public func restore(_ state: VirtioBlkState) throws(DeviceStateError) {
        func refuse(_ field: String, _ loaded: String, _ here: String) -> DeviceStateError {
            DeviceStateError(section: VirtioBlkState.sectionName, field: field,
                             "\(loaded) in the stream, \(here) on virtio-blk \(stateName) here")
        }
        guard state.capacitySectors == capacitySectors else {
            throw refuse("capacity", "\(state.capacitySectors) sectors", "\(capacitySectors) sectors")
        }
        guard state.deviceFeatures == deviceFeatures else {
            throw refuse("features", "0x\(String(state.deviceFeatures, radix: 16))", "0x\(String(deviceFeatures, radix: 16))")
        }
        guard state.serial == serial else { throw refuse("serial", "'\(state.serial)'", "'\(serial)'") }
        try restoreFailedRequests(state.failedRequests)
    }
}
