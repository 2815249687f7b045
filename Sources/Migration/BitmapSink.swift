/// Where the destination's loader hands the `dirty-bitmap` records (IncomingBitmaps on a real
/// VM); each refusal names the record.
public protocol BitmapSink: AnyObject {
    func load(_ chunk: DirtyBitmapRecord, from record: DecodedRecord) throws(StreamError)
}
