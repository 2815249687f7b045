/// MirrorCopyMode: `write-blocking` copies each guest write to the target before it completes.
public enum MirrorCopyMode: String, Sendable {
    case background
    case writeBlocking = "write-blocking"
}
