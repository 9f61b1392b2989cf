/// A stretch of speech found by a voice-activity detector.
public struct SpeechSegment: Sendable, Equatable {
    /// Index of the first sample in the whole stream (16 kHz).
    public var startSample: Int
    public var samples: [Float]
    /// How many of the first samples are context from before the detected speech.
    public var leadSamples: Int

    public init(startSample: Int, samples: [Float], leadSamples: Int = 0) {
        self.startSample = startSample
        self.samples = samples
        self.leadSamples = leadSamples
    }

    public var endSample: Int { startSample + samples.count }
    /// Where the detected speech starts.
    public var speechStartSample: Int { startSample + leadSamples }
}

/// A streaming voice-activity detector over 16 kHz mono audio. One instance serves
/// one audio stream and is confined to the thread that drives it.
public protocol VoiceActivityDetector {
    /// Feeds more audio; returns the speech segments that ended within it.
    mutating func accept(_ samples: [Float]) throws -> [SpeechSegment]
    /// Ends the stream; returns any speech still open.
    mutating func finish() throws -> [SpeechSegment]
    /// Samples of speech at the end of what was fed that belong to a segment not ended yet (0
    /// when none is open): what a live partial result is recognised from.
    var openSpeechSamples: Int { get }
}

extension VoiceActivityDetector {
    public var openSpeechSamples: Int { 0 }
}

/// Makes a fresh detector for each audio stream.
public protocol VoiceActivityDetectorFactory: Sendable {
    func makeDetector() throws -> any VoiceActivityDetector
    /// A factory whose detectors cut speech that runs on longer than `seconds` (live audio,
    /// where a sentence is only sent once it ends); one that cannot cut returns itself.
    func limitingSpeech(to seconds: Double) -> any VoiceActivityDetectorFactory
}

extension VoiceActivityDetectorFactory {
    public func limitingSpeech(to seconds: Double) -> any VoiceActivityDetectorFactory { self }
}
