extension BlockError {
    /// A socket that could not be opened (NBD's server or client): QEMU's text and the errno.
    public init(_ error: SocketError) {
        self.init(error.description, errno: error.errno)
    }
}
