/// A malformed option payload: the server answers NBD_REP_ERR_INVALID with this message.
struct OptionDataError: Error {
    let message: String
}
