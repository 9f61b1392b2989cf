import Dispatch
import Foundation

/// What a model returns for one piece of audio.
public struct RecognitionResult: Sendable, Equatable {
    public var text: String
    /// Tokens and their start times in seconds from the start of the piece (empty when the
    /// model gives no timestamps).
    public var tokens: [String]
    public var timestamps: [Double]
    /// The text in the model's own timed stretches (Whisper's timestamp tokens), in order;
    /// empty when the model gives none.
    public var segments: [TimedText]
    /// Language the model detected or was told, if it reports one.
    public var language: String?

    public init(text: String, tokens: [String] = [], timestamps: [Double] = [], segments: [TimedText] = [], language: String? = nil) {
        self.text = text
        self.tokens = tokens
        self.timestamps = timestamps
        self.segments = segments
        self.language = language
    }
}

/// A stretch of a result's text and when it was spoken, in seconds from the start of the piece.
public struct TimedText: Sendable, Equatable {
    public var text: String
    public var start: Double
    public var end: Double

    public init(text: String, start: Double, end: Double) {
        self.text = text
        self.start = start
        self.end = end
    }
}

/// What one recognition asks of the model besides the audio.
public struct RecognitionOptions: Sendable, Hashable {
    public enum Task: String, Sendable, Codable, CaseIterable {
        case transcribe, translate
    }

    /// The language spoken: a code from `ModelInfo.languages`, `ModelInfo.detect` to let the
    /// model find it, or `nil` for the language the model was loaded with.
    public var language: String?
    /// `translate` gives English text (models with `ModelInfo.translates`).
    public var task: Task

    public init(language: String? = nil, task: Task = .transcribe) {
        self.language = language
        self.task = task
    }
}

/// Describes a loaded model.
public struct ModelInfo: Sendable, Equatable, Codable {
    /// The family as sherpa-onnx knows it: `paraformer`, `whisper`, `sense_voice`, `transducer`.
    public var family: String
    /// A human name, usually the model folder's name.
    public var name: String
    /// Whether the model's text comes out in Traditional characters and needs conversion for `zh`.
    public var emitsTraditional: Bool
    /// The longest piece of audio, in seconds, the model should be given in one call.
    public var maxSegmentSeconds: Double
    /// Whether results can carry token timestamps, so that several segments recognised as one
    /// piece can be told apart again.
    public var givesTokenTimestamps: Bool
    /// Whether results can carry timed stretches of text (`RecognitionResult.segments`), which
    /// also tell merged segments apart.
    public var givesSegmentTimestamps: Bool
    /// Neighbouring speech segments are best recognised together in pieces of up to this length,
    /// when results can be split back (timestamps): fewer calls, and context for the model.
    public var mergeTargetSeconds: Double
    /// Segments further apart than this are not merged.
    public var mergeMaxGapSeconds: Double
    /// Whether the decoder itself can be biased towards hotwords (transducers with beam search,
    /// Tingxie's Whisper decoder with `--hotword-prompt`).
    public var biasesHotwords: Bool
    /// Whether the text stage still looks for the hotwords the decoder took: a bias on a
    /// greedy decoder misses terms the audio does not make its likeliest.
    public var hotwordsAlsoInText: Bool
    /// Whether the model scores given text against audio (`Recognizer.likelihoods`).
    public var scoresText: Bool
    /// The languages a recognition may name (`RecognitionOptions.language`); the first is the
    /// one the model was loaded with.
    public var languages: [String]
    /// Whether the model can find the language itself (`ModelInfo.detect`).
    public var detectsLanguage: Bool
    /// Whether the model can translate what it hears into English.
    public var translates: Bool
    /// Whether the model's text carries punctuation (Whisper, SenseVoice); others get it from a
    /// `Punctuator` when one is loaded.
    public var punctuates: Bool
    /// Pieces the recogniser decodes best in one call (a batch decoder's capacity); 1 for one
    /// that decodes a call's pieces one after another.
    public var batchPieces: Int

    /// Whether several segments recognised as one piece can be told apart again (timestamps
    /// of either kind), so that neighbouring segments may be merged.
    public var splitsMergedPieces: Bool { givesTokenTimestamps || givesSegmentTimestamps }

    /// The language code that asks the model to detect the language.
    public static let detect = "auto"

    public init(family: String, name: String, emitsTraditional: Bool, maxSegmentSeconds: Double,
                givesTokenTimestamps: Bool = false, givesSegmentTimestamps: Bool = false,
                mergeTargetSeconds: Double = 15, mergeMaxGapSeconds: Double = 1, biasesHotwords: Bool = false, hotwordsAlsoInText: Bool = false, scoresText: Bool = false,
                languages: [String] = ["zh"], detectsLanguage: Bool = false, translates: Bool = false, punctuates: Bool = false,
                batchPieces: Int = 1) {
        self.family = family
        self.name = name
        self.emitsTraditional = emitsTraditional
        self.maxSegmentSeconds = maxSegmentSeconds
        self.givesTokenTimestamps = givesTokenTimestamps
        self.givesSegmentTimestamps = givesSegmentTimestamps
        self.mergeTargetSeconds = mergeTargetSeconds
        self.mergeMaxGapSeconds = mergeMaxGapSeconds
        self.biasesHotwords = biasesHotwords
        self.hotwordsAlsoInText = hotwordsAlsoInText
        self.scoresText = scoresText
        self.languages = languages
        self.detectsLanguage = detectsLanguage
        self.translates = translates
        self.punctuates = punctuates
        self.batchPieces = max(1, batchPieces)
    }

    /// The code of a language a client named, as this model takes it: lower case, a region or
    /// script dropped (`zh-CN`, `zh_Hant` -> `zh`), or `detect`.
    /// - Throws: `TingxieError(.invalidArgument)` listing what the model supports.
    public func language(named requested: String) throws -> String {
        let trimmed = requested.trimmingCharacters(in: .whitespaces).lowercased()
        let code = String(trimmed.prefix { $0 != "-" && $0 != "_" })
        if code == Self.detect {
            guard detectsLanguage else {
                throw TingxieError(.invalidArgument, "the model \(name) cannot detect the language; name one of: \(languages.joined(separator: ", "))")
            }
            return code
        }
        guard languages.contains(code) else {
            let detection = detectsLanguage ? ", or \(Self.detect) to detect it" : ""
            throw TingxieError(.invalidArgument, "language \"\(requested.prefix(20))\" is not one the model \(name) speaks; supported: \(languages.joined(separator: ", "))\(detection)")
        }
        return code
    }

    /// Checks that the model can carry out `options`.
    /// - Returns: the requested language as the model names it (`language(named:)`), nil when none was requested.
    /// - Throws: `TingxieError(.invalidArgument)` naming what the model can do.
    @discardableResult
    public func check(_ options: RecognitionOptions) throws -> String? {
        let code = try options.language.map { try self.language(named: $0) }
        if options.task == .translate, !translates {
            throw TingxieError(.invalidArgument, "the model \(name) (\(family)) cannot translate; it transcribes \(languages.joined(separator: ", "))")
        }
        return code
    }
}

/// Adds punctuation to the text of a sentence that has none.
///
/// Calls block while the model runs (see `Recognizer`); implementations allow concurrent calls.
public protocol Punctuator: Sendable {
    /// A human name, usually the model folder's name.
    var name: String { get }
    func punctuate(_ text: String) -> String
}

/// A recogniser that decodes audio as it arrives (a streaming model): live text while a
/// sentence is spoken, which an offline `Recognizer` then replaces with the sentence's result.
public protocol StreamingRecognizer: Sendable {
    /// A human name, usually the model folder's name.
    var name: String { get }
    /// A fresh decoding state for one live stream's sentences.
    func makeStream() throws -> any StreamingDecoding
}

/// One live stream's decoding state. Used from one thread at a time; `decode` blocks while the
/// model runs.
public protocol StreamingDecoding: AnyObject {
    /// Adds 16 kHz mono samples of the sentence being spoken (cheap: features only).
    func accept(_ samples: [Float])
    /// Decodes the audio accepted and not decoded yet; returns the sentence's text so far. The
    /// text only grows: what was returned once is never revised.
    func decode() -> String
    /// Forgets the sentence, for the next one.
    func reset()
}

/// A speech recogniser for 16 kHz mono audio.
///
/// Calls block the calling thread while the model runs: call them from a dedicated
/// thread pool, never from Swift's cooperative pool. Implementations must allow
/// concurrent calls from several threads.
public protocol Recognizer: Sendable {
    var info: ModelInfo { get }

    /// Recognises several independent pieces of 16 kHz mono audio in one batch.
    /// - Parameter hotwords: terms to bias the decoder towards; ignored unless
    ///   `info.biasesHotwords`.
    /// - Parameter options: the language and task, which `info.check` accepts.
    /// - Returns: one result per piece, in order.
    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult]

    /// The same, decoding up to `parallel` pieces at once, each on its own thread (the caller
    /// has that many decode slots; see `SharedRecognizer`).
    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions, parallel: Int) throws -> [RecognitionResult]

    /// The hotwords the decoder takes: all of them for a biasable model unless it says
    /// otherwise (terms it cannot spell), none for others.
    func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword]

    /// The log-probability the model gives each of `texts` as the whole transcript of
    /// `samples`, or nil where it cannot score text: how a hotword the text stage heard is
    /// weighed against the model's own words.
    func likelihoods(of texts: [String], in samples: [Float], options: RecognitionOptions) throws -> [Double]?

    /// Recognises `batch` if a decode can start at once, else returns `nil` without waiting:
    /// for work that is skipped rather than queued (live partials), so that it never waits
    /// ahead of jobs for a decode slot.
    func recognizeIfIdle(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult]?
}

extension Recognizer {
    public func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
        info.biasesHotwords ? hotwords : []
    }

    public func likelihoods(of texts: [String], in samples: [Float], options: RecognitionOptions) throws -> [Double]? { nil }

    /// A recogniser that serves every caller at once is always idle.
    public func recognizeIfIdle(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult]? {
        try recognize(batch: batch, hotwords: hotwords, options: options)
    }

    /// Recognisers that cannot decode side by side decode as they always do.
    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions, parallel: Int) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: hotwords, options: options)
    }

    /// Recognises several pieces without hotwords, in the model's own language.
    public func recognize(batch: [[Float]], hotwords: [Hotword] = []) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: hotwords, options: RecognitionOptions())
    }

    /// Recognises one piece of 16 kHz mono audio.
    public func recognize(_ samples: [Float]) throws -> RecognitionResult {
        try recognize(batch: [samples])[0]
    }
}

/// A recogniser that runs at most `limit` decodes at once, whoever calls it: the server's jobs
/// and live streams share one, so its memory is that of `limit` decodes however many clients
/// are connected. Callers over the limit wait on their own thread.
///
/// A batch of several pieces takes one slot, waiting for it, and borrows the slots that are free
/// at that moment (one per further piece) to decode its pieces side by side: a lone long job
/// uses the cores that idle workers leave, and gives them back after the batch, so a job that
/// arrives waits at most one batch for a slot. `recognizeIfIdle` takes a slot only when one is
/// free and nobody waits for it.
public final class SharedRecognizer: Recognizer {
    public let base: any Recognizer
    public let limit: Int
    private let slots: DispatchSemaphore

    public init(_ base: any Recognizer, limit: Int) {
        self.base = base
        self.limit = max(1, limit)
        self.slots = DispatchSemaphore(value: self.limit)
    }

    public var info: ModelInfo { base.info }

    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        slots.wait()
        var held = 1
        // Waiting callers are woken before a borrower's try: only slots nobody waits for are taken.
        // A batch decoder decodes the pieces together on one slot: it borrows none.
        while held < batch.count, base.info.batchPieces == 1, slots.wait(timeout: .now()) == .success { held += 1 }
        defer { for _ in 0..<held { slots.signal() } }
        return try base.recognize(batch: batch, hotwords: hotwords, options: options, parallel: held)
    }

    public func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions, parallel: Int) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: hotwords, options: options)
    }

    public func recognizeIfIdle(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult]? {
        guard slots.wait(timeout: .now()) == .success else { return nil }
        defer { slots.signal() }
        return try base.recognize(batch: batch, hotwords: hotwords, options: options)
    }

    public func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
        base.decodableHotwords(hotwords)
    }

    /// Scoring runs the model too: it waits for a slot.
    public func likelihoods(of texts: [String], in samples: [Float], options: RecognitionOptions) throws -> [Double]? {
        slots.wait()
        defer { slots.signal() }
        return try base.likelihoods(of: texts, in: samples, options: options)
    }
}
