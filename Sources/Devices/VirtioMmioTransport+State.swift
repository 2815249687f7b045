extension VirtioMmioTransport {
    public func save() -> VirtioMmioTransportState {
        VirtioMmioTransportState(
            status: status, deviceFeaturesSelect: deviceFeaturesSelect, driverFeaturesSelect: driverFeaturesSelect,
            driverFeatures: driverFeatures, queueSelect: queueSelect, interruptStatus: interruptStatus,
            configGeneration: configGeneration, brokenReason: brokenReason,
            queues: queues.map { .init(size: $0.size, ready: $0.isReady, descriptorTable: $0.descriptorTable,
                                       availRing: $0.availRing, usedRing: $0.usedRing) })
    }

    /// Checks every value as a driver's register write would be checked (features only from the
    /// offer, queue sizes powers of 2 up to the maximum, rings inside RAM, known status bits),
    /// then applies them all and, if the driver had set DRIVER_OK, activates the device as that
    /// write did. On a fresh transport, before the vCPU runs; the virtqueues' indices follow.
    public func restore(_ state: VirtioMmioTransportState) throws(DeviceStateError) {
        try check(state)
        status = state.status
        deviceFeaturesSelect = state.deviceFeaturesSelect
        driverFeaturesSelect = state.driverFeaturesSelect
        driverFeatures = state.driverFeatures
        queueSelect = state.queueSelect
        interruptStatus = state.interruptStatus
        configGeneration = state.configGeneration
        brokenReason = state.brokenReason
        for (queue, layout) in zip(queues, state.queues) {
            queue.size = layout.size
            queue.descriptorTable = layout.descriptorTable
            queue.availRing = layout.availRing
            queue.usedRing = layout.usedRing
            queue.isReady = layout.ready
        }
        if status & Status.driverOK != 0 && brokenReason == nil { activate() }
    }

    private func refuse(_ field: String, _ problem: String) -> DeviceStateError {
        DeviceStateError(section: VirtioMmioTransportState.sectionName, field: field, problem)
    }

    private func check(_ state: VirtioMmioTransportState) throws(DeviceStateError) {
        let known = Status.acknowledge | Status.driver | Status.driverOK | Status.featuresOK | Status.needsReset | Status.failed
        guard state.status & ~known == 0 else { throw refuse("status", "unknown bits 0x\(String(state.status & ~known, radix: 16))") }
        guard state.driverFeatures & ~offeredFeatures == 0 else {
            throw refuse("driver_features", "0x\(String(state.driverFeatures, radix: 16)) has features never offered (0x\(String(offeredFeatures, radix: 16)))")
        }
        if state.status & Status.featuresOK != 0 && state.driverFeatures & VirtioFeature.version1 == 0 {
            throw refuse("driver_features", "FEATURES_OK without VIRTIO_F_VERSION_1")
        }
        if state.status & Status.driverOK != 0 && state.status & Status.featuresOK == 0 && state.brokenReason == nil {
            throw refuse("status", "DRIVER_OK without FEATURES_OK")
        }
        guard (state.status & Status.needsReset != 0) == (state.brokenReason != nil) else {
            throw refuse("status", "DEVICE_NEEDS_RESET and the broken reason disagree")
        }
        guard state.interruptStatus & ~3 == 0 else { throw refuse("interrupt_status", "unknown bits 0x\(String(state.interruptStatus, radix: 16))") }
        if let reason = state.brokenReason, reason.utf8.count > VirtioMmioTransportState.maxBrokenReasonBytes {
            throw refuse("broken_reason", "longer than \(VirtioMmioTransportState.maxBrokenReasonBytes) bytes")
        }
        guard state.queues.count == queues.count else {
            throw refuse("queues", "\(state.queues.count) queues, this device has \(queues.count)")
        }
        for (index, (queue, layout)) in zip(queues, state.queues).enumerated() {
            try check(layout, of: queue, index: index)
        }
    }

    private func check(_ layout: VirtioMmioTransportState.QueueLayout, of queue: Virtqueue, index: Int) throws(DeviceStateError) {
        guard layout.size <= queue.maxSize else { throw refuse("queue[\(index)].size", "\(layout.size) is above the maximum \(queue.maxSize)") }
        guard layout.ready else { return }
        guard layout.size > 0, layout.size & (layout.size - 1) == 0 else {
            throw refuse("queue[\(index)].size", "\(layout.size) is not a power of 2 up to \(queue.maxSize)")
        }
        let rings: [(String, UInt64, UInt64)] = [
            ("desc", layout.descriptorTable, Virtqueue.descriptorSize * UInt64(layout.size)),
            ("avail", layout.availRing, 6 + 2 * UInt64(layout.size)),
            ("used", layout.usedRing, 6 + 8 * UInt64(layout.size)),
        ]
        for (name, address, length) in rings where !queue.memory.contains(address, length: length) {
            throw refuse("queue[\(index)].\(name)", "ring at 0x\(String(address, radix: 16)) (+\(length)) is outside guest RAM")
        }
    }
}
