extension Serial16550 {
    /// Call while the vCPU thread that owns the UART is parked (its mutex hand-off orders the accesses).
    public func save() -> SerialState {
        SerialState(interruptEnable: interruptEnable, lineControl: lineControl, modemControl: modemControl,
                    scratch: scratch, divisor: divisor)
    }

    /// Refuses bits a driver could never have set (IER above bit 3, MCR above bit 4). Like `save`,
    /// only while the owning vCPU thread is parked: its resume hands the values over.
    public func restore(_ state: SerialState) throws(DeviceStateError) {
        func refuse(_ field: String, _ value: UInt8, _ mask: UInt8) -> DeviceStateError {
            DeviceStateError(section: SerialState.sectionName, field: field,
                             "0x\(String(value, radix: 16)) has bits outside 0x\(String(mask, radix: 16))")
        }
        guard state.interruptEnable & ~0x0f == 0 else { throw refuse("ier", state.interruptEnable, 0x0f) }
        guard state.modemControl & ~0x1f == 0 else { throw refuse("mcr", state.modemControl, 0x1f) }
        interruptEnable = state.interruptEnable
        lineControl = state.lineControl
        modemControl = state.modemControl
        scratch = state.scratch
        divisor = state.divisor
    }
}
