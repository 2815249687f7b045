/// Memory for cached metadata. QEMU 7.2 on Linux caches at most 32 MiB of L2 tables (enough
/// to map 256 GiB with 64 KiB clusters) and a few refcount blocks.
struct Qcow2CacheLimits {
    var l2Bytes: Int
    var refcountBytes: Int

    static let standard = Qcow2CacheLimits(l2Bytes: 32 << 20, refcountBytes: 4 << 20)
}
