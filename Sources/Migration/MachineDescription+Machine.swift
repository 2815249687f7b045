import Machine

extension MachineDescription {
    /// What a machine's configuration says before any state is saved: RAM size and its devices
    /// (one section per virtio-blk slot, the debug-exit port). The full state section set is
    /// checked again by `Machine.loadState`.
    public static func of(_ machine: Machine) -> MachineDescription {
        var sections = (0..<machine.config.virtioBlkDevices.count).map { SectionID(name: "virtio-blk", instance: UInt32($0)) }
        if machine.config.debugExitPort != nil { sections.append(SectionID(name: "debug-exit", instance: 0)) }
        return MachineDescription(ramSize: UInt64(machine.ram.size), sections: sections)
    }
}
