/// An error that crosses a module seam with what the layers above need: QEMU's text as its
/// `description`, and its kind (`ErrorKind`). A wrapping error keeps the kind of the one it wraps,
/// so the monitor answers with the class the lowest layer chose.
public protocol KindedError: Error, CustomStringConvertible, Sendable {
    var kind: ErrorKind { get }
}
