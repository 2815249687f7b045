extension DebugExit {
    public func save() -> DebugExitState { DebugExitState(iobase: iobase, iosize: 1) }

    public func restore(_ state: DebugExitState) throws(DeviceStateError) {
        guard state.iobase == iobase else {
            throw DeviceStateError(section: DebugExitState.sectionName, field: "iobase",
                                   "0x\(String(state.iobase, radix: 16)), but this machine has it at 0x\(String(iobase, radix: 16))")
        }
        guard state.iosize == 1 else {
            throw DeviceStateError(section: DebugExitState.sectionName, field: "iosize", "\(state.iosize), expected 1")
        }
    }
}
