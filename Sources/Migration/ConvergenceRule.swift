/// When precopy stops making live passes and switches over (svmm's rule where QEMU's
/// migration_iteration_run compares the pending bytes with bandwidth × downtime-limit).
///
/// The expected downtime must fit `downtime-limit` at the bandwidth the pass measured, as in
/// QEMU. Within that, another live pass is made while it pays: while the pass left pending
/// (dirtied again) at most half of what it sent, the next one will be shorter still and leave
/// less for the stop-and-copy; once the expected downtime is below `smallDowntime` a pass
/// more gains nothing worth its time, and once a pass no longer halves the dirty set the guest
/// dirties too fast for more passes to help. Measured with the RAM-dirtying guest (README,
/// "Live migration"): it dirties ~310 MB/s, a live pass sends ~950 MB/s, so each pass shrinks
/// its 64 MiB set ~3× and the stop-and-copy is left a few MiB instead of ~24.
struct ConvergenceRule: Sendable {
    /// Milliseconds: below this the stop-and-copy is about as short as the switch-over's fixed part.
    var smallDowntime: Double = 2
    /// A pass that leaves more than this share of what it sent pending does not converge.
    var shrinkFactor: Double = 0.5

    /// After a pass that sent `sentBytes` (pages taken, at 4 KiB each) and left `pendingBytes`,
    /// at `bytesPerMillisecond`: switch over now?
    /// The bulk pass (every page, most of them zero) says nothing about convergence: after it
    /// the dirty set goes live unless it is already tiny.
    func switchOver(pendingBytes: UInt64, sentBytes: UInt64, bytesPerMillisecond: Double,
                    downtimeLimit: UInt64, bulkPass: Bool) -> Bool {
        let expected = Double(pendingBytes) / max(bytesPerMillisecond, 1)
        if expected > Double(downtimeLimit) { return false }
        if expected <= smallDowntime { return true }
        if bulkPass { return false }
        return Double(pendingBytes) > Double(sentBytes) * shrinkFactor
    }
}
