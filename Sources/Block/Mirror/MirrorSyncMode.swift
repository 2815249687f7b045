/// MirrorSyncMode as blockdev-mirror accepts it (QEMU 7.2 rejects incremental and bitmap).
public enum MirrorSyncMode: String, Sendable {
    case full, top, none
}
