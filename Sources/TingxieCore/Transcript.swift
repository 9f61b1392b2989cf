/// A finished transcription: what every output format is rendered from.
public struct Transcript: Sendable, Equatable, Codable {
    /// One timed piece of the transcript, usually one sentence.
    public struct Segment: Sendable, Equatable, Codable {
        public var id: Int
        /// Start and end in seconds on the audio's own timeline.
        public var start: Double
        public var end: Double
        public var text: String
        /// Model tokens with their start times in seconds (absolute), when the model gives them.
        public var tokens: [String]?
        public var timestamps: [Double]?
        /// Where hotwords came out: replaced by the text stage, or produced by a biased decoder.
        public var hotwords: [HotwordApplication]?

        public init(id: Int, start: Double, end: Double, text: String,
                    tokens: [String]? = nil, timestamps: [Double]? = nil, hotwords: [HotwordApplication]? = nil) {
            self.id = id
            self.start = start
            self.end = end
            self.text = text
            self.tokens = tokens
            self.timestamps = timestamps
            self.hotwords = hotwords
        }
    }

    public var text: String
    /// Length of the audio in seconds.
    public var durationS: Double
    /// The language spoken, as the model found it or was told.
    public var language: String?
    /// `translate` when the text is the model's English translation; `nil` for a transcript
    /// (stored transcripts from before translation have none).
    public var task: RecognitionOptions.Task?
    public var model: String
    public var segments: [Segment]
    /// Wall-clock seconds spent producing the transcript.
    public var processingS: Double
    /// Real-time factor: processing time divided by audio duration.
    public var rtf: Double
    /// What the transcript lacks and why (audio that could not be read, speech that gave no
    /// text); `nil` when complete.
    public var warnings: [String]?
    /// Stretches of detected speech that gave no text, even decoded again on their own; `nil`
    /// when every stretch did.
    public var gaps: [Gap]?

    /// A stretch of the audio, in seconds on its timeline.
    public struct Gap: Sendable, Equatable, Codable {
        public var start: Double
        public var end: Double

        public init(start: Double, end: Double) {
            self.start = start
            self.end = end
        }
    }

    public init(text: String, durationS: Double, language: String?, task: RecognitionOptions.Task = .transcribe,
                model: String, segments: [Segment], processingS: Double) {
        self.text = text
        self.durationS = durationS
        self.language = language
        self.task = task == .translate ? task : nil
        self.model = model
        self.segments = segments
        self.processingS = processingS
        self.rtf = durationS > 0 ? processingS / durationS : 0
    }

    enum CodingKeys: String, CodingKey {
        case text, language, task, model, segments, rtf, warnings, gaps
        case durationS = "duration_s"
        case processingS = "processing_s"
    }
}

/// Where a hotword came out in a segment's text.
public struct HotwordApplication: Sendable, Equatable, Codable {
    /// What put the hotword there.
    public enum Stage: String, Sendable, Codable {
        /// The decoder searched with the hotword in its context and produced it.
        case decoder
        /// The text stage replaced a span that sounded like it.
        case text
    }

    public var hotword: String
    /// The text the model produced (the hotword itself for the decoder stage).
    public var original: String
    /// Character offset of the hotword in the segment's text.
    public var offset: Int
    /// How close the pronunciations were (0...1; 1 for the decoder stage).
    public var score: Double
    public var stage: Stage

    public init(hotword: String, original: String, offset: Int, score: Double, stage: Stage = .text) {
        self.hotword = hotword
        self.original = original
        self.offset = offset
        self.score = score
        self.stage = stage
    }
}
