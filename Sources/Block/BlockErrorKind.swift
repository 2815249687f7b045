/// The QMP error class a block-layer error maps to (QEMU's ErrorClass): callers branch on it,
/// the monitor reports it. Only the classes QEMU 7.2 uses for block errors are here.
public enum BlockErrorKind: Sendable, Equatable {
    case generic
    /// ERROR_CLASS_DEVICE_NOT_ACTIVE: e.g. `Block job 'x' not found`.
    case deviceNotActive
}
