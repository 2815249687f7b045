/// The destination's stream input: what the channel (socket or exec: pipe) delivers.
struct ChannelInput: StreamInput {
    let channel: MigrationChannel

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        try channel.read(into: buffer)
    }
}
