import Block
import Foundation
import Glibc
import Testing

/// 4 KiB random reads at queue depth 32 on a preallocated qcow2 image against the same on a raw
/// file, through the same libaio loop. Slow (about half a minute, 2 GiB of scratch files): runs
/// only with SVMM_QCOW2_BENCH=1.
@Suite struct Qcow2BenchTests {
    typealias F = Qcow2Fixture

    @Test(.enabled(if: ProcessInfo.processInfo.environment["SVMM_QCOW2_BENCH"] == "1"))
    func preallocatedRandomReadsKeepUpWithRaw() throws {
        let f = try F()
        try f.tool("qemu-img", "create", "-f", "raw", "-o", "preallocation=full", f.path("disk.raw"), "1G")
        try f.tool("qemu-img", "create", "-f", "qcow2", "-o", "preallocation=full", f.path("disk.qcow2"), "1G")
        let raw = try f.file("disk.raw", readOnly: true)
        let qcow2 = try f.qcow2("disk.qcow2", readOnly: true)
        var rawRuns: [Double] = []
        var qcow2Runs: [Double] = []
        for _ in 0..<3 {
            rawRuns.append(try iops(f, raw, seconds: 4))
            qcow2Runs.append(try iops(f, qcow2, seconds: 4))
        }
        let ratio = qcow2Runs.sorted()[1] / rawRuns.sorted()[1]
        print("qcow2 bench: raw \(rawRuns.map { Int($0) }) IOPS, qcow2 \(qcow2Runs.map { Int($0) }) IOPS, median ratio \(ratio)")
        #expect(ratio >= 0.9)
    }

    private func iops(_ f: F, _ driver: BlockDriver, seconds: Double) throws -> Double {
        let depth = 32
        let blocks = driver.length / 4096
        let buffers = (0..<depth).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096) }
        defer { buffers.forEach { $0.deallocate() } }
        var completed = 0
        var running = 0
        var stopping = false
        var submit: (Int) -> Void = { _ in }
        submit = { slot in
            running += 1
            driver.read(at: Int64.random(in: 0..<blocks) * 4096, into: IoVector(buffers[slot])) { _ in
                running -= 1
                completed += 1
                if !stopping { submit(slot) }
            }
        }
        let start = Date()
        for slot in 0..<depth { submit(slot) }
        try f.wait { Date().timeIntervalSince(start) >= seconds }
        stopping = true
        let elapsed = Date().timeIntervalSince(start)
        let count = completed
        try f.wait { running == 0 }
        return Double(count) / elapsed
    }
}
