/// The kind a block-layer error carries (QEMU's ErrorClass): Loop's ErrorKind, shared by every
/// layer so that QMP reports the class the block layer chose (`.deviceNotActive` for
/// `Block job 'x' not found`).
public typealias BlockErrorKind = ErrorKind
