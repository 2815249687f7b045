/// A section's identity within one machine's state: its name and instance.
struct StateSectionKey: Hashable, Comparable {
    let name: String
    let instance: UInt32

    init(_ name: String, _ instance: UInt32) {
        self.name = name
        self.instance = instance
    }

    static func < (lhs: StateSectionKey, rhs: StateSectionKey) -> Bool {
        (lhs.name, lhs.instance) < (rhs.name, rhs.instance)
    }
}
