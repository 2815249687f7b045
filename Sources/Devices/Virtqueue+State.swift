extension Virtqueue {
    public func save() -> VirtqueueState {
        VirtqueueState(lastAvailIndex: lastAvailIndex, usedIndex: usedIndex, signalledUsedIndex: signalledUsedIndex,
                       eventIndexEnabled: eventIndexEnabled)
    }

    /// After the transport's layout (and RAM) are in place. As QEMU's virtio_load, a live queue's
    /// indices must be consistent with the rings in RAM: the driver's avail index no more than a
    /// queue size ahead of the device's, and no more chains taken than returned plus a queue size;
    /// EVENT_IDX must match what the transport negotiated. A queue that is not live has none.
    public func restore(_ state: VirtqueueState) throws(DeviceStateError) {
        func refuse(_ field: String, _ problem: String) -> DeviceStateError {
            DeviceStateError(section: VirtqueueState.sectionName, field: field, problem)
        }
        guard isReady else {
            guard state == VirtqueueState(lastAvailIndex: 0, usedIndex: 0, signalledUsedIndex: 0, eventIndexEnabled: state.eventIndexEnabled) else {
                throw refuse("last_avail_idx", "indices on a queue that is not ready")
            }
            return
        }
        guard state.eventIndexEnabled == eventIndexEnabled else {
            throw refuse("event_idx", "\(state.eventIndexEnabled), but the negotiated features say \(eventIndexEnabled)")
        }
        guard state.lastAvailIndex &- state.usedIndex <= size else {
            throw refuse("used_idx", "\(state.usedIndex) is more than the queue size \(size) behind last_avail_idx \(state.lastAvailIndex)")
        }
        guard let available = try? memory.loadUInt16(at: availRing + 2) else {
            throw refuse("avail", "the avail ring is outside guest RAM")
        }
        guard available &- state.lastAvailIndex <= size else {
            throw refuse("last_avail_idx", "\(state.lastAvailIndex) inconsistent with the guest's avail index \(available) (queue size \(size))")
        }
        lastAvailIndex = state.lastAvailIndex
        usedIndex = state.usedIndex
        signalledUsedIndex = state.signalledUsedIndex
    }
}
