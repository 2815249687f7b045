/// The sections `loadState` was given, checked to be exactly the ones this machine has (each
/// once, in its version), and decoded one by one with errors that name the section.
struct StateSectionSet {
    private let byKey: [StateSectionKey: StateSection]

    /// `expected`: every section this machine has, with the version it loads.
    init(_ sections: [StateSection], expected: [StateSectionKey: UInt32]) throws(MachineError) {
        var byKey: [StateSectionKey: StateSection] = [:]
        for section in sections {
            let key = StateSectionKey(section.name, section.instanceId)
            guard let version = expected[key] else {
                throw MachineError("Unknown state section '\(section.name)' instance \(section.instanceId): this machine has no such device")
            }
            guard byKey[key] == nil else { throw MachineError("State section '\(section.name)' instance \(section.instanceId) appears twice") }
            guard section.version == version else {
                throw MachineError("State section '\(section.name)' instance \(section.instanceId): version \(section.version), this svmm loads version \(version)")
            }
            byKey[key] = section
        }
        if let missing = expected.keys.sorted().first(where: { byKey[$0] == nil }) {
            throw MachineError("State section '\(missing.name)' instance \(missing.instance) is missing: the source has a different device set")
        }
        self.byKey = byKey
    }

    /// The section's payload through `decoder` (a StatePayloadCodec function), or an error naming it.
    func decode<T>(_ kind: StateSectionKind, _ instance: UInt32 = 0, _ decoder: ([UInt8]) -> T?) throws(MachineError) -> T {
        let payload = byKey[StateSectionKey(kind.rawValue, instance)]?.payload ?? []
        guard let value = decoder(payload) else {
            throw MachineError("State section '\(kind.rawValue)' instance \(instance): malformed payload (\(payload.count) bytes)")
        }
        return value
    }
}
