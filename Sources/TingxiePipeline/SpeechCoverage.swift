import TingxieAudio
import TingxieCore

/// Which stretches of detected speech a recognition result accounts for. A decoder can end a
/// window early or jump its timestamps, and the speech it passed over would be lost without a
/// trace; the pipeline decodes such holes again on their own and reports what still yields nothing.
enum SpeechCoverage {
    /// A token's text is taken to last this long after its start time.
    static let tokenSamples = modelSampleRate / 2

    /// The sample ranges on the audio's timeline that a result's text covers: its timed stretches
    /// with text, else its tokens (each lasting `tokenSamples`), else all of `input` when it has
    /// text at all.
    /// - Parameter input: the audio the model was given, on the audio's timeline (padding
    ///   included: the result's times count from its start).
    static func covered(by result: RecognitionResult, input: Range<Int>) -> [Range<Int>] {
        let rate = Double(modelSampleRate)
        func sample(_ time: Double) -> Int { input.lowerBound + Int((time * rate).rounded()) }
        let stretches = result.segments.filter { !$0.text.trimmingCharacters(in: .whitespaces).isEmpty }
        if !stretches.isEmpty {
            return stretches.map { sample($0.start)..<max(sample($0.start), sample($0.end)) }
        }
        if !result.timestamps.isEmpty, result.timestamps.count == result.tokens.count {
            return result.timestamps.map { sample($0)..<sample($0) + tokenSamples }
        }
        return result.text.trimmingCharacters(in: .whitespaces).isEmpty ? [] : [input]
    }

    /// The parts of `speech` that no range of `covered` overlaps, in order.
    static func uncovered(_ speech: Range<Int>, by covered: [Range<Int>]) -> [Range<Int>] {
        var holes: [Range<Int>] = []
        var from = speech.lowerBound
        for range in covered.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.upperBound > from {
            if range.lowerBound >= speech.upperBound { break }
            if range.lowerBound > from { holes.append(from..<range.lowerBound) }
            from = max(from, range.upperBound)
        }
        if speech.upperBound > from { holes.append(from..<speech.upperBound) }
        return holes
    }
}
