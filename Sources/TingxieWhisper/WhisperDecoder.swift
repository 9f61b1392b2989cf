import Foundation
import TingxieCore
import TingxieRuntime

/// One piece to decode: the encoder's keys and values, and how many of its mel frames are speech
/// (the rest is padding), which caps its tokens as sherpa-onnx caps them (6 a second).
public struct WhisperPiece: Sendable {
    public var cross: WhisperCrossAttention
    public var speechFrames: Int

    public init(cross: WhisperCrossAttention, speechFrames: Int) {
        self.cross = cross
        self.speechFrames = speechFrames
    }
}

/// A piece's decoded tokens (no prompt, no end token), the timed stretches its timestamp tokens
/// mark (seconds from the piece's start; `end` nil where the text ran out before a closing one),
/// and the start of each text token from the alignment heads (empty for a model without them).
public struct WhisperDecoding: Sendable, Equatable {
    public struct Stretch: Sendable, Equatable {
        public var start: Double
        public var end: Double?
        public var tokens: [Int64]
    }

    public var tokens: [Int64]
    public var stretches: [Stretch]
    public var tokenStarts: [Double]
}

/// Greedy Whisper decoding with timestamp tokens, as sherpa-onnx decodes (OpenAI's timestamp
/// rules; no other suppression), of many pieces in one batch on the step graph: a piece joins
/// when a slot is free and leaves when it ends, and its tokens do not depend on its batch.
public final class WhisperDecoder: @unchecked Sendable {
    private let batch: WhisperStepBatch
    private let tokens: WhisperTokens
    /// The first timestamp may be at most 1 s into a piece.
    static let maximumInitialTimestamp: Int64 = 50

    public convenience init(step: RuntimeSession, dimensions: WhisperDimensions, tokens: WhisperTokens, capacity: Int) throws {
        try self.init(batch: WhisperStepBatch(step: step, dimensions: dimensions, capacity: capacity, width: 1), tokens: tokens)
    }

    /// A decoder on `batch` (of width 1), which it uses until it is released.
    /// - Throws: `.invalidModel` when the special tokens do not fit the vocabulary.
    public init(batch: WhisperStepBatch, tokens: WhisperTokens) throws {
        try Self.check(tokens, vocabulary: batch.dimensions.vocabulary)
        self.batch = batch
        self.tokens = tokens
    }

    /// The timestamp rules index the logits with the special tokens: they must lie inside them.
    static func check(_ tokens: WhisperTokens, vocabulary: Int) throws {
        let inside = [tokens.sot, tokens.eot, tokens.transcribe, tokens.translate, tokens.noTimestamps] + Array(tokens.languages.values)
        guard inside.allSatisfy({ $0 >= 0 && $0 < vocabulary }), tokens.eot < tokens.timestampBegin,
              tokens.timestampBegin + maximumInitialTimestamp < vocabulary
        else {
            throw TingxieError(.invalidModel, "the Whisper model's special tokens do not fit its vocabulary of \(vocabulary)")
        }
    }

    /// One piece in a slot: what it has fed and what it will feed next.
    private struct Running {
        let index: Int
        /// The prompt, then the decoded tokens.
        var sequence: [Int64]
        let promptLength: Int
        /// Tokens fed so far (the cache's length).
        var fed = 0
        let cap: Int
        /// Encoder frames of speech: the alignment rows are cut to them.
        let speechFrames: Int
        /// The alignment heads' attention of each fed decoded token, [heads × speechFrames].
        var rows: [[Float16]] = []
    }

    /// Decodes `pieces` after `prompt` (from `WhisperTokens.prompt`), up to the batch's capacity
    /// at once; `isCancelled` is asked before every step.
    /// - Throws: `.canceled` when asked to stop; the runtime's errors.
    public func decode(_ pieces: [WhisperPiece], prompt: [Int64], isCancelled: () -> Bool = { false }) throws -> [WhisperDecoding] {
        try decode(count: pieces.count, prompt: { _ in prompt }, piece: { pieces[$0] }, isCancelled: isCancelled)
    }

    /// Decodes `count` pieces, each after its own prompt; `piece(i)` is asked for when piece i
    /// takes a slot, so only the pieces being decoded are held.
    public func decode(count: Int, prompt: (Int) throws -> [Int64], piece: (Int) throws -> WhisperPiece,
                       isCancelled: () -> Bool = { false }) throws -> [WhisperDecoding] {
        let d = batch.dimensions
        guard batch.width == 1 else { throw TingxieError(.internalError, "the decoder feeds one token a step") }
        var results = [WhisperDecoding?](repeating: nil, count: count)
        var running: [Running] = []
        var next = 0
        var logits = [Float](repeating: 0, count: d.vocabulary)
        while next < count || !running.isEmpty {
            while running.count < batch.capacity, next < count {
                let joining = try piece(next)
                try batch.load(slot: running.count, joining.cross, spoken: joining.cross.frames)
                // sherpa-onnx: at most 6 tokens a second of speech, and half the cache.
                let cap = min(Int(Double(joining.speechFrames) / 100 * 6), d.cache / 2)
                let start = try prompt(next)
                guard !start.isEmpty, start.count < d.stepSlots / 2 else { throw TingxieError(.internalError, "a prompt of \(start.count) tokens") }
                running.append(Running(index: next, sequence: start, promptLength: start.count, cap: cap,
                                       speechFrames: min(max(joining.speechFrames / 2, 1), joining.cross.frames)))
                next += 1
            }
            if isCancelled() { throw TingxieError(.canceled, "decoding was canceled") }
            let output = try batch.step(tokens: running.map { [$0.sequence[$0.fed]] }, offsets: running.map(\.fed))
            // From the last slot down, so that a finished piece's slot goes to one already read.
            for slot in stride(from: running.count - 1, through: 0, by: -1) {
                running[slot].fed += 1
                var piece = running[slot]
                // Prompt tokens are fed one a step, with the others' tokens; their logits are not used.
                if piece.fed < piece.sequence.count { continue }
                if piece.fed > piece.promptLength, d.alignmentHeads > 0 {
                    let row = batch.alignment(slot: slot)
                    piece.rows.append((0..<d.alignmentHeads).flatMap { head in
                        row[(head * d.frames)..<(head * d.frames + piece.speechFrames)].map(Float16.init)
                    })
                }
                for i in 0..<d.vocabulary { logits[i] = output[slot * d.vocabulary + i] }
                let decoded = piece.sequence.count - piece.promptLength
                let token: Int64
                if decoded >= piece.cap || piece.fed >= d.stepSlots - 1 {
                    token = tokens.eot
                } else {
                    applyTimestampRules(&logits, sequence: piece.sequence, promptLength: piece.promptLength)
                    token = Int64(logits.withUnsafeBufferPointer { whisperArgmax($0, width: d.vocabulary) })
                }
                if token == tokens.eot {
                    results[piece.index] = finished(piece)
                    let last = running.count - 1
                    if slot != last {
                        batch.move(slot: last, to: slot)
                        running[slot] = running[last]
                    }
                    running.removeLast()
                } else {
                    piece.sequence.append(token)
                    running[slot] = piece
                }
            }
        }
        return results.map { $0! }
    }

    /// OpenAI's timestamp rules, as sherpa-onnx applies them: timestamps come in pairs around
    /// text, never go back, the first is at most 1 s in, and a timestamp is forced where their
    /// total probability beats every text token.
    func applyTimestampRules(_ logits: inout [Float], sequence: [Int64], promptLength: Int) {
        let begin = Int(tokens.timestampBegin), eot = Int(tokens.eot), count = logits.count
        let sampled = sequence.count - promptLength
        let lastIsTime = sampled >= 1 && sequence.last! >= tokens.timestampBegin
        let penultimateIsTime = sampled < 2 || sequence[sequence.count - 2] >= tokens.timestampBegin
        let lastTime = sequence[promptLength...].last { $0 >= tokens.timestampBegin }.map(Int.init)
        logits[Int(tokens.noTimestamps)] = -.infinity
        func suppress(_ range: Range<Int>) {
            let clamped = range.clamped(to: 0..<count)
            for i in clamped { logits[i] = -.infinity }
        }
        if sampled == 0 {
            suppress(0..<begin)  // a timestamp first, at most 1 s in
            suppress((begin + Int(Self.maximumInitialTimestamp) + 1)..<count)
        } else if lastIsTime && penultimateIsTime {
            suppress(begin..<count)  // text after an opening timestamp
        } else if lastIsTime {
            suppress(0..<eot)  // a closing timestamp: another timestamp or the end
            suppress((eot + 1)..<begin)
        }
        if let lastTime {
            // Timestamps never go back; after a closing one the next may repeat it.
            suppress(begin..<(lastIsTime && !penultimateIsTime ? lastTime : lastTime + 1))
        }
        if sampled > 0, !lastIsTime {
            let timeMax = logits[begin...].max() ?? -.infinity
            guard timeMax > -.infinity else { return }
            var sum: Float = 0
            for i in begin..<count where logits[i] > -.infinity { sum += expf(logits[i] - timeMax) }
            if timeMax + logf(sum) > (logits[..<begin].max() ?? -.infinity) { suppress(0..<begin) }
        }
    }

    /// The tokens, the stretches their timestamp tokens mark, and the text tokens' starts.
    private func finished(_ piece: Running) -> WhisperDecoding {
        let sequence = Array(piece.sequence[piece.promptLength...])
        var stretches: [WhisperDecoding.Stretch] = []
        var open: WhisperDecoding.Stretch?
        for token in sequence {
            if token >= tokens.timestampBegin {
                let time = Double(token - tokens.timestampBegin) * WhisperAlignment.secondsPerFrame
                if var stretch = open {
                    stretch.end = time
                    if !stretch.tokens.isEmpty { stretches.append(stretch) }
                }
                open = WhisperDecoding.Stretch(start: time, end: nil, tokens: [])
            } else {
                open?.tokens.append(token)
            }
        }
        if let open, !open.tokens.isEmpty { stretches.append(open) }
        // Every decoded token was fed and has its row (the last one's step gave the end).
        let isTime = sequence.map { $0 >= tokens.timestampBegin }
        let starts = WhisperAlignment.tokenStarts(rows: piece.rows, heads: batch.dimensions.alignmentHeads, frames: piece.speechFrames,
                                                  speechFrames: piece.speechFrames, isTime: Array(isTime.prefix(piece.rows.count)))
        return WhisperDecoding(tokens: sequence, stretches: stretches, tokenStarts: starts)
    }
}
