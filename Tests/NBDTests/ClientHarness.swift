import Block
import Foundation
@testable import NBD

/// An NbdClientDriver on an EventLoop, with blocking helpers for the test thread.
final class ClientHarness {
    let loop: EventLoop
    private let ownsLoop: Bool
    private var driver: NbdClientDriver?

    init(_ options: NbdClientOptions, loop: EventLoop? = nil) throws {
        self.loop = try loop ?? EventLoop.started()
        ownsLoop = loop == nil
        do {
            driver = try self.loop.sync { try NbdClientDriver.connect(options, watcher: self.loop) }
        } catch {
            if ownsLoop { self.loop.shutdown() }
            throw error
        }
    }

    /// Runs `body` on the loop with the driver.
    func onLoop<T>(_ body: @escaping (NbdClientDriver) throws -> T) throws -> T {
        try loop.sync { try body(self.driver!) }
    }

    func read(_ offset: Int64, _ count: Int, split: Bool = false) throws -> Data {
        let buffer = TestBuffer(count: count)
        let vector = split ? buffer.split(at: count / 3) : buffer.vector
        let result = try loop.run { done in self.driver!.read(at: offset, into: vector, completion: done) }
        _ = try result.get()
        return buffer.data
    }

    func write(_ data: Data, at offset: Int64) throws {
        let buffer = TestBuffer(data)
        let result = try loop.run { done in self.driver!.write(at: offset, from: buffer.split(at: data.count / 2), completion: done) }
        _ = try result.get()
        _ = buffer
    }

    func result(_ operation: @escaping (NbdClientDriver, @escaping IoCompletion) -> Void) throws -> Result<Int, BlockError> {
        try loop.run { done in operation(self.driver!, done) }
    }

    func shutdown() {
        try? loop.sync { self.driver = nil }
        if ownsLoop { loop.shutdown() }
    }
}
