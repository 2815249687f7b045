import KVM

/// The dirty pages of one fetch, in ascending order.
struct DirtyPages {
    let dirtyPages: [Int]
    init(_ bitmap: DirtyPageBitmap) { dirtyPages = bitmap.dirtyPages }
}
