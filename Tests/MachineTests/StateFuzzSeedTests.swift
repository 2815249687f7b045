import CKVM
import Foundation
import Testing
@testable import Machine

/// The `state` fuzz target's seeds are well-formed sections (so the fuzzer starts from payloads
/// that get past the decoders into the checks), and the fuzz entry takes each without trapping.
@Suite struct StateFuzzSeedTests {
    static let seeds = MachineFixture.packageRoot.appendingPathComponent("Tests/fuzz-corpus/state")

    @Test func everySeedDecodesAsTheSectionItSelects() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.seeds.path).filter { $0 != "crashes" }
        #expect(files.count >= 9)
        var kinds = Set<StateSectionKind>()
        for file in files {
            let data = Array(try Data(contentsOf: Self.seeds.appendingPathComponent(file)))
            let kind = StateSectionKind.allCases[Int(data[0]) % StateSectionKind.allCases.count]
            let payload = Array(data.dropFirst())
            kinds.insert(kind)
            let decodes: Bool = switch kind {
            case .cpu: StatePayloadCodec.decodeVcpu(payload) != nil
            case .kvmClock: StatePayloadCodec.decodeRaw(payload, as: kvm_clock_data()) != nil
            case .kvmIrqchip: StatePayloadCodec.decodeRaw(payload, as: kvm_irqchip()) != nil
            case .kvmPit: StatePayloadCodec.decodeRaw(payload, as: kvm_pit_state2()).map { (try? MachineStateChecks.check(pit: $0)) != nil } == true
            case .serial: StatePayloadCodec.decodeSerial(payload) != nil
            case .debugExit: StatePayloadCodec.decodeDebugExit(payload) != nil
            case .virtioMmio: StatePayloadCodec.decodeTransport(payload) != nil
            case .virtqueue: StatePayloadCodec.decodeVirtqueue(payload) != nil
            case .virtioBlk: StatePayloadCodec.decodeVirtioBlk(payload) != nil
            }
            #expect(decodes, "seed \(file) does not decode as \(kind.rawValue)")
            StateFuzzEntry.fuzz(data)
        }
        #expect(kinds == Set(StateSectionKind.allCases), "a seed for every section kind")
    }
}
