import TingxieAudio
import TingxieCore
import TingxieText

/// Merges short neighbouring speech segments into pieces of up to a target length, so that the
/// model is not called on one-second snippets (every call reads all weights once: short calls
/// cost 2.5x more per second of audio) and hears sentences in their context, and splits the
/// result back by token timestamps or by the model's timed stretches of text.
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

    /// Splits a merged piece's result into one result per segment, as if each segment had been
    /// recognised alone: by the model's timed stretches (each stretch whole to the segment its
    /// middle falls in, with its tokens) or else by token timestamps (each token to its
    /// segment). Token times count from the segment's own padded start.
    /// - Parameters:
    ///   - pieceStart: the piece's first sample on the audio's timeline.
    ///   - padding: silence samples that preceded the piece in the model's input.
    /// - Returns: `nil` when the result has text but neither kind of timestamps.
    static func split(_ result: RecognitionResult, into segments: [SpeechSegment], pieceStart: Int, padding: Int) -> [RecognitionResult]? {
        let rate = Double(modelSampleRate)
        /// Where a time in the piece lies on the audio's timeline.
        func sample(_ time: Double) -> Int { pieceStart - padding + Int(time * rate) }
        /// The segment a sample belongs to: the last one that starts before it, or the next one
        /// when it lies in the second half of the gap between them.
        func owner(_ sample: Int) -> Int {
            var index = 0
            while index + 1 < segments.count, sample >= (segments[index].endSample + segments[index + 1].startSample) / 2 {
                index += 1
            }
            return index
        }
        let timed = !result.tokens.isEmpty && result.timestamps.count == result.tokens.count
        var parts = segments.map { _ in (stretches: [TimedText](), tokens: [String](), timestamps: [Double]()) }
        /// A time in the piece as a time from the segment's own padded start.
        func rebased(_ time: Double, to index: Int) -> Double { Double(sample(time) - (segments[index].startSample - padding)) / rate }
        func give(_ token: String, at time: Double, to index: Int) {
            parts[index].tokens.append(token)
            parts[index].timestamps.append(rebased(time, to: index))
        }
        if !result.segments.isEmpty {
            let tokens = timed ? tokensByStretch(result) : nil
            for (position, stretch) in result.segments.enumerated() {
                let index = owner(sample((stretch.start + stretch.end) / 2))
                parts[index].stretches.append(TimedText(text: stretch.text, start: rebased(stretch.start, to: index), end: rebased(stretch.end, to: index)))
                for (token, time) in tokens?[position] ?? [] { give(token, at: time, to: index) }
            }
            return parts.map {
                RecognitionResult(text: joinStretches($0.stretches.map(\.text)), tokens: $0.tokens, timestamps: $0.timestamps,
                                  segments: $0.stretches, language: result.language)
            }
        }
        if timed {
            for (token, time) in zip(result.tokens, result.timestamps) { give(token, at: time, to: owner(sample(time))) }
            return parts.map { RecognitionResult(text: joinTokens($0.tokens), tokens: $0.tokens, timestamps: $0.timestamps, language: result.language) }
        }
        return result.text.isEmpty ? segments.map { _ in RecognitionResult(text: "", language: result.language) } : nil
    }

    /// A result's timed stretches with text as results of their own, each with its timed tokens,
    /// and its span in the result's time; `nil` for fewer than two, or when the result's timed
    /// tokens do not spell its stretches (its word times would be lost).
    static func sentences(of result: RecognitionResult) -> [(result: RecognitionResult, start: Double, end: Double)]? {
        let timed = !result.tokens.isEmpty && result.timestamps.count == result.tokens.count
        let tokens = timed ? tokensByStretch(result) : nil
        if timed && tokens == nil { return nil }
        let sentences = result.segments.indices.compactMap { index -> (result: RecognitionResult, start: Double, end: Double)? in
            let stretch = result.segments[index]
            let text = stretch.text.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty else { return nil }
            let own = tokens?[index] ?? []
            return (RecognitionResult(text: text, tokens: own.map(\.token), timestamps: own.map(\.time), segments: [stretch], language: result.language),
                    stretch.start, stretch.end)
        }
        return sentences.count > 1 ? sentences : nil
    }

    /// A result's timed tokens, stretch by stretch: the stretches' texts are its tokens in order.
    /// `nil` when they do not add up to the same text (no token is then put in a stretch it may
    /// not belong to).
    static func tokensByStretch(_ result: RecognitionResult) -> [[(token: String, time: Double)]]? {
        var tokens = zip(result.tokens, result.timestamps).makeIterator()
        var stretches: [[(token: String, time: Double)]] = []
        for stretch in result.segments {
            var bytes = 0
            var taken: [(token: String, time: Double)] = []
            while bytes < stretch.text.utf8.count, let (token, time) = tokens.next() {
                taken.append((token, time))
                bytes += token.utf8.count
            }
            guard bytes == stretch.text.utf8.count else { return nil }
            stretches.append(taken)
        }
        return tokens.next() == nil ? stretches : nil
    }

    /// Joins stretches of text: directly where either side is Chinese or Japanese (or their
    /// punctuation), with a space between words of other scripts.
    static func joinStretches(_ texts: [String]) -> String {
        var text = ""
        for stretch in texts.map({ $0.trimmingCharacters(in: .whitespaces) }) where !stretch.isEmpty {
            if let last = text.unicodeScalars.last, let first = stretch.unicodeScalars.first, !last.isWrittenWithoutSpaces, !first.isWrittenWithoutSpaces {
                text += " "
            }
            text += stretch
        }
        return text
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
