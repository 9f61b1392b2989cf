import Foundation

/// libFuzzer target: what clients send as text — hotword lists (the API's, OpenAI's prompt) and
/// numbers for the bounded parser. Refusals are thrown errors; nothing may crash or trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzText(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    if let parsed = try? Hotword.parse(text, source: "fuzz") {
        precondition(parsed.count <= Hotword.maxCount && parsed.allSatisfy { Hotword.weightRange.contains($0.weight) })
        precondition((try? Hotword.parse(Hotword.listText(parsed), source: "fuzz")) == parsed, "listText must read back")
    }
    precondition(Hotword.terms(inPrompt: text).count <= Hotword.maxCount)
    _ = try? Hotword.merge(Hotword.terms(inPrompt: text), Hotword.terms(inPrompt: text))
    if let value = try? ClientNumber.integer(text, field: "n", in: -1000...1000) { precondition((-1000...1000).contains(value)) }
    if let value = try? ClientNumber.number(text, field: "n", in: 0...1) { precondition(value.isFinite && (0...1).contains(value)) }
    if let value = try? ClientNumber.duration(text, field: "n", upTo: Duration.longestParsed) {
        _ = Date().addingTimeInterval(-value.seconds)
    }
    return 0
}
