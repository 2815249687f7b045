import Block
import Machine

/// The receiver thread's BitmapSink: every chunk is applied on the loop, which owns the graph
/// and the BitmapLoader.
final class IncomingBitmaps: BitmapSink, @unchecked Sendable {  // the loader is touched on the loop only (load hops there)
    private let machine: Machine
    private let loader: BitmapLoader

    init(machine: Machine) {
        self.machine = machine
        loader = BitmapLoader(graph: machine.graph)
    }

    func load(_ chunk: DirtyBitmapRecord, from record: DecodedRecord) throws(StreamError) {
        let problem = LoopBridge<String?>.call(on: machine) { [self] in
            do throws(StreamError) { try loader.apply(chunk) } catch { return error.description }
            return nil
        }
        if let problem { throw record.error(problem) }
    }

    /// On the loop.
    func beforeVmStart() { loader.beforeVmStart() }

    /// On the loop.
    @discardableResult
    func cancelUnfinished() -> [String] { loader.cancelUnfinished() }
}
