import Glibc

/// What crosses to an `aio=threads` worker: the request's plain values, never its completion closure.
struct ThreadPoolWork: @unchecked Sendable {  // the iovecs point into buffers the loop keeps alive (ThreadPoolIo.pending) until the result is back
    let id: Int
    let fd: Int32
    let operation: FileRequest.Operation
    let offset: Int64
    let iovecs: [iovec]
}
