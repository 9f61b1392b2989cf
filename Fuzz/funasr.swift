import Foundation

/// libFuzzer target: what a FunASR client sends as text — the stream's config (with its
/// hotwords, JSON or space-separated) and the control messages after it. Refusals are thrown
/// errors; whatever is accepted is in range, and nothing may crash or trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFunASR(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    if let config = try? FunASRConfig(json: text, defaultSampleRate: 16_000) {
        precondition((8000...48_000).contains(config.sampleRate))
        precondition(config.mode == .offline || config.wavFormat == "pcm")
        if let interval = config.partialIntervalSeconds {
            precondition(interval >= FunASRConfig.chunkUnitSeconds && interval <= 100 * FunASRConfig.chunkUnitSeconds)
        }
        if let list = config.hotwords, let parsed = try? Hotword.parse(list, source: "fuzz") {
            precondition(parsed.count <= Hotword.maxCount && parsed.allSatisfy { Hotword.weightRange.contains($0.weight) })
        }
    }
    if let list = FunASRConfig.hotwordList(text), let parsed = try? Hotword.parse(list, source: "fuzz") {
        precondition(parsed.allSatisfy { Hotword.weightRange.contains($0.weight) })
    }
    _ = FunASRConfig.endsInput(text)
    return 0
}
