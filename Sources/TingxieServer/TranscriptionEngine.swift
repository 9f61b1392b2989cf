import Foundation
import TingxieCore
import TingxieJobs
import TingxiePipeline
import TingxieText

/// Runs jobs through the transcription pipeline, with the job's hotwords.
public struct TranscriptionEngine: JobProcessor {
    public let pipeline: TranscriptionPipeline
    /// Pronunciations for hotword matching; `nil` when the dictionary is not installed, in
    /// which case jobs with hotwords fail with a message saying so.
    public let dictionary: PinyinDictionary?

    public init(pipeline: TranscriptionPipeline, dictionary: PinyinDictionary?) {
        self.pipeline = pipeline
        self.dictionary = dictionary
    }

    public var model: ModelInfo { pipeline.recognizer.info }

    public func process(_ job: Job, audio: URL, progress: @escaping @Sendable (Double) -> Void) async throws -> Transcript {
        do {
            return try await pipeline.transcribe(audio, hotwords: try matcher(for: job.hotwords), progress: progress)
        } catch let error as TingxieError {
            throw error.naming(audio, as: job.filename ?? "the upload")
        }
    }

    /// Parses hotwords as a request gives them; `nil` when there are none.
    /// - Throws: `TingxieError(.invalidArgument)` for a malformed list.
    public func matcher(for hotwords: String?) throws -> HotwordMatcher? {
        guard let hotwords, !hotwords.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        let parsed = try Hotword.parse(hotwords, source: "hotwords")
        guard let dictionary else {
            throw TingxieError(.invalidArgument, "hotwords need the Unihan readings (Debian package unicode-data), which this server lacks")
        }
        return HotwordMatcher(hotwords: parsed, dictionary: dictionary)
    }
}
