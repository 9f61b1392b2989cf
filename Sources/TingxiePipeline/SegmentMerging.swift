import TingxieAudio
import TingxieCore

/// Merges short neighbouring speech segments into pieces of up to a target length, so that the
/// model is not called on one-second snippets (every call reads all weights once: short calls
/// cost 2.5x more per second of audio), and splits the result back by token timestamps.
enum SegmentMerging {
    /// Groups the leading segments of `pending` into pieces. A piece ends when the next segment
    /// starts more than `maxGap` samples after it or would make it longer than `target`. The
    /// last piece is returned only when `all` is set: later segments may still join it.
    static func pieces(_ pending: [SpeechSegment], target: Int, maxGap: Int, all: Bool) -> [[SpeechSegment]] {
        var pieces: [[SpeechSegment]] = []
        var current: [SpeechSegment] = []
        for segment in pending {
            if let first = current.first, let last = current.last,
               segment.startSample - last.endSample > maxGap || segment.endSample - first.startSample > target {
                pieces.append(current)
                current = []
            }
            current.append(segment)
        }
        if all && !current.isEmpty { pieces.append(current) }
        return pieces
    }

    /// Splits a merged piece's result into one result per segment, each with timestamps relative
    /// to its own (padded) start, as if the segment had been recognised alone.
    /// - Parameters:
    ///   - pieceStart: the piece's first sample on the audio's timeline.
    ///   - padding: silence samples that preceded the piece in the model's input.
    /// - Returns: `nil` when the result has no usable token timestamps.
    static func split(_ result: RecognitionResult, into segments: [SpeechSegment], pieceStart: Int, padding: Int) -> [RecognitionResult]? {
        guard !result.tokens.isEmpty, result.timestamps.count == result.tokens.count else {
            return result.text.isEmpty ? segments.map { _ in RecognitionResult(text: "", language: result.language) } : nil
        }
        let rate = Double(modelSampleRate)
        var parts = segments.map { _ in (tokens: [String](), timestamps: [Double]()) }
        for (token, time) in zip(result.tokens, result.timestamps) {
            let sample = pieceStart - padding + Int(time * rate)
            // A token belongs to the last segment that starts before it, or to the next one when
            // it lies in the second half of the gap between them.
            var index = 0
            while index + 1 < segments.count {
                let gapMiddle = (segments[index].endSample + segments[index + 1].startSample) / 2
                if sample < gapMiddle { break }
                index += 1
            }
            let segmentStart = segments[index].startSample - padding
            parts[index].tokens.append(token)
            parts[index].timestamps.append(Double(sample - segmentStart) / rate)
        }
        return parts.map { RecognitionResult(text: joinTokens($0.tokens), tokens: $0.tokens, timestamps: $0.timestamps, language: result.language) }
    }

    /// Joins model tokens into text. In a sentencepiece vocabulary `▁` starts a word and other
    /// tokens continue one; in Paraformer's, a trailing `@@` continues a word and other Latin
    /// tokens are words of their own. CJK characters are never separated by spaces.
    static func joinTokens(_ tokens: [String]) -> String {
        let sentencePiece = tokens.contains { $0.hasPrefix("▁") }
        var text = ""
        var joinNext = sentencePiece
        for raw in tokens {
            var token = raw
            var continues = sentencePiece
            if token.hasSuffix("@@") {
                token.removeLast(2)
                continues = true
            }
            if token.hasPrefix("▁") {
                token.removeFirst()
                if !text.isEmpty && !token.isEmpty { text += " " }
            } else if !joinNext, let last = text.last, let first = token.first, last.isLatinWordCharacter, first.isLatinWordCharacter {
                text += " "
            }
            text += token
            joinNext = continues
        }
        return text
    }
}

extension Character {
    fileprivate var isLatinWordCharacter: Bool { isASCII && (isLetter || isNumber || self == "'") }
}
