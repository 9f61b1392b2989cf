import Dispatch

/// What a model returns for one piece of audio.
public struct RecognitionResult: Sendable, Equatable {
    public var text: String
    /// Tokens and their start times in seconds from the start of the piece (empty when the
    /// model gives no timestamps).
    public var tokens: [String]
    public var timestamps: [Double]
    /// Language the model detected or was told, if it reports one.
    public var language: String?

    public init(text: String, tokens: [String] = [], timestamps: [Double] = [], language: String? = nil) {
        self.text = text
        self.tokens = tokens
        self.timestamps = timestamps
        self.language = language
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
    /// Whether the decoder itself can be biased towards hotwords (transducers with beam search).
    public var biasesHotwords: Bool

    public init(family: String, name: String, emitsTraditional: Bool, maxSegmentSeconds: Double,
                givesTokenTimestamps: Bool = false, biasesHotwords: Bool = false) {
        self.family = family
        self.name = name
        self.emitsTraditional = emitsTraditional
        self.maxSegmentSeconds = maxSegmentSeconds
        self.givesTokenTimestamps = givesTokenTimestamps
        self.biasesHotwords = biasesHotwords
    }
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
    /// - Returns: one result per piece, in order.
    func recognize(batch: [[Float]], hotwords: [Hotword]) throws -> [RecognitionResult]

    /// The hotwords the decoder takes: all of them for a biasable model unless it says
    /// otherwise (terms it cannot spell), none for others.
    func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword]
}

extension Recognizer {
    public func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
        info.biasesHotwords ? hotwords : []
    }

    /// Recognises several pieces without hotwords.
    public func recognize(batch: [[Float]]) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: [])
    }

    /// Recognises one piece of 16 kHz mono audio.
    public func recognize(_ samples: [Float]) throws -> RecognitionResult {
        try recognize(batch: [samples])[0]
    }
}

/// A recogniser that runs at most `limit` recognitions at once, whoever calls it: the
/// server's jobs and live streams share one, so its memory is that of `limit` decodes
/// however many clients are connected. Callers over the limit wait on their own thread.
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

    public func recognize(batch: [[Float]], hotwords: [Hotword]) throws -> [RecognitionResult] {
        slots.wait()
        defer { slots.signal() }
        return try base.recognize(batch: batch, hotwords: hotwords)
    }

    public func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
        base.decodableHotwords(hotwords)
    }
}
