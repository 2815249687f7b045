import QmpClient
import QmpJSON

/// One sample of the two copies in flight, as `virsh migrate --copy-storage-all --verbose`
/// shows them: the mirror's offset/len (query-block-jobs) and the RAM stream (query-migrate).
struct MigrationProgress: Sendable, Equatable {
    var mirrorPercent: Int?
    var ramPercent: Int?
    /// `ram.dirty-pages-rate`, pages a second.
    var dirtyPagesRate: Int64?
    /// `expected-downtime`, milliseconds.
    var expectedDowntime: Int64?
    var migrationStatus: String?

    /// Reads the job named `jobId` from a query-block-jobs answer.
    mutating func update(jobs: JSONValue, jobId: String) {
        guard let job = jobs.arrayValue?.first(where: { $0["device"]?.stringValue == jobId }) else { return }
        // No len yet (0): keep the last figure.
        if let percent = Self.percent(done: job["offset"]?.doubleValue, of: job["len"]?.doubleValue) { mirrorPercent = percent }
    }

    /// Reads a source's query-migrate answer (RAM done = total - remaining).
    mutating func update(migration: JSONValue) {
        migrationStatus = migration["status"]?.stringValue
        if let ram = migration["ram"], let total = ram["total"]?.doubleValue, let remaining = ram["remaining"]?.doubleValue {
            if let percent = Self.percent(done: total - remaining, of: total) { ramPercent = percent }
            dirtyPagesRate = ram["dirty-pages-rate"]?.intValue
        }
        if let downtime = migration["expected-downtime"]?.intValue { expectedDowntime = downtime }
    }

    private static func percent(done: Double?, of total: Double?) -> Int? {
        guard let done, let total, total > 0 else { return nil }
        return Int((max(0, min(done, total)) * 100 / total).rounded(.down))
    }

    /// What changes once a phase: the mirror caught up, the migration's status.
    var milestone: String { "\(mirrorPercent == 100) \(migrationStatus ?? "")" }

    /// `Migration: [mirror 100 %, RAM  42 %] dirty rate 312 pages/s, expected downtime 30 ms`
    var line: String {
        func field(_ value: Int?) -> String {
            guard let value else { return "  - %" }
            return String(repeating: " ", count: max(0, 3 - String(value).count)) + "\(value) %"
        }
        var text = "Migration: [mirror \(field(mirrorPercent)), RAM \(field(ramPercent))]"
        if let dirtyPagesRate { text += " dirty rate \(dirtyPagesRate) pages/s" }
        if let expectedDowntime { text += ", expected downtime \(expectedDowntime) ms" }
        if let migrationStatus { text += " (\(migrationStatus))" }
        return text
    }
}
