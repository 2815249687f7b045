/// What a guest write through `mirror_top` put on the source, for write-blocking mode to copy.
enum MirrorWrite {
    case data(IoVector)
    case zeroes
}
