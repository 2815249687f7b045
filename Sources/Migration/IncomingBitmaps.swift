import Block
import Machine

/// The receiver thread's BitmapSink: every chunk is applied on the loop, which owns the graph
/// and the BitmapLoader.
final class IncomingBitmaps: BitmapSink, Sendable {
    private let loader: LoopBound<BitmapLoader>

    /// On the loop.
    init(machine: Machine) {
        loader = machine.bind(BitmapLoader(graph: machine.graph))
    }

    func load(_ chunk: DirtyBitmapRecord, from record: DecodedRecord) throws(StreamError) {
        let problem = loader.performAndWait { loader -> String? in
            do throws(StreamError) { try loader.apply(chunk) } catch { return error.description }
            return nil
        }
        if let problem { throw record.error(problem) }
    }

    /// On the loop.
    func beforeVmStart() { loader.value.beforeVmStart() }

    /// On the loop.
    @discardableResult
    func cancelUnfinished() -> [String] { loader.value.cancelUnfinished() }
}
