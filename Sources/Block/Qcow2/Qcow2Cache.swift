/// A bounded cache of metadata clusters keyed by their file offset, evicting the least recently
/// used one. Dirty victims are written back first, through the owner's ordering rules.
final class Qcow2Cache<Entry: Qcow2Cacheable> {
    private var entries: [Int64: Entry] = [:]
    private let capacity: Int
    private var clock = 0
    /// Dirty entries stay until this is cleared (their write-back must wait).
    var keepsDirtyEntries = false

    init(capacity: Int) {
        self.capacity = max(capacity, 4)
    }

    func get(_ offset: Int64) -> Entry? {
        guard let entry = entries[offset] else { return nil }
        clock += 1
        entry.lastUse = clock
        return entry
    }

    /// Adds `entry`, first evicting old unpinned entries if the cache is full.
    func insert(_ entry: Entry, writeBack: (Entry) throws(BlockError) -> Void) throws(BlockError) {
        while entries.count >= capacity, let victim = leastRecentlyUsed() {
            if victim.isDirty { try writeBack(victim) }
            entries.removeValue(forKey: victim.offset)
        }
        clock += 1
        entry.lastUse = clock
        entries[entry.offset] = entry
    }

    var all: Dictionary<Int64, Entry>.Values { entries.values }

    func removeAll() { entries.removeAll() }

    private func leastRecentlyUsed() -> Entry? {
        entries.values.filter { !$0.isPinned && !(keepsDirtyEntries && $0.isDirty) }.min { $0.lastUse < $1.lastUse }
    }
}
