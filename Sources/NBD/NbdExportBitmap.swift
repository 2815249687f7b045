/// One entry of block-export-add's `bitmaps` (QAPI's BlockDirtyBitmapOrStr): a bitmap named
/// alone, searched on the exported node and below it, or named with the node it is on.
public enum NbdExportBitmap: Equatable, Sendable {
    case local(String)
    case external(node: String, name: String)
}
