import Foundation
import FuzzTargets
import Testing

/// Replays every committed fuzz input (`Tests/fuzz-corpus/<target>/`, crashes/ included) through the
/// same entry the libFuzzer binary calls, so a crash the fuzzer once found stays fixed in a plain
/// `swift test`, without a sanitized build.
struct FuzzCorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz-corpus")

    static func inputs(of target: FuzzTarget) -> [URL] {
        let folder = corpus.appendingPathComponent(target.rawValue)
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        return walker.compactMap { $0 as? URL }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
            .sorted { $0.path < $1.path }
    }

    @Test("every target has a committed seed corpus", arguments: FuzzTarget.allCases)
    func everyTargetHasSeeds(target: FuzzTarget) {
        #expect(!Self.inputs(of: target).isEmpty, "Tests/fuzz-corpus/\(target.rawValue)/ is empty")
    }

    @Test("each corpus input goes through its parser without trapping", arguments: FuzzTarget.allCases)
    func corpusInputsDoNotTrap(target: FuzzTarget) throws {
        for input in Self.inputs(of: target) {
            target.run(Array(try Data(contentsOf: input)))
        }
    }
}
