import Foundation
import Synchronization
import TingxieCore
import TingxieJobs
import TingxiePipeline
import TingxieText

/// Runs jobs through the transcription pipeline, with the server's and the job's hotwords.
public struct TranscriptionEngine: JobProcessor {
    public let pipeline: TranscriptionPipeline
    /// Pronunciations and ordinary words for hotword matching; `nil` when they are not
    /// installed, in which case requests with hotwords are refused with a message saying so.
    public let lexicon: Lexicon?
    /// Hotwords for every request (`serve --hotwords-file`).
    public let serverHotwords: [Hotword]
    /// The segments of the jobs running now, as they are recognised (for clients that stream).
    let running = RunningSegments()

    /// - Throws: `TingxieError(.invalidArgument)` when there are server hotwords but no dictionary.
    public init(pipeline: TranscriptionPipeline, lexicon: Lexicon?, serverHotwords: [Hotword] = []) throws {
        guard lexicon != nil || serverHotwords.isEmpty else { throw Self.missingDictionary }
        self.pipeline = pipeline
        self.lexicon = lexicon
        self.serverHotwords = serverHotwords
    }

    public var model: ModelInfo { pipeline.recognizer.info }

    public func process(_ job: Job, audio: URL, progress: @escaping @Sendable (Double) -> Void) async throws -> Transcript {
        do {
            let run = running.begin(job.id)
            defer { running.end(job.id, run: run) }
            let options = RecognitionOptions(language: job.language, task: job.task)
            var transcript = try await pipeline.transcribe(audio, hotwords: try matcher(for: job.hotwords), options: options,
                                                           allowPartial: job.allowPartial, progress: progress) { [running] segment in
                running.append(segment, to: job.id)
            }
            transcript.warnings = transcript.warnings?.map { TingxieError.naming($0, stored: audio, as: job.filename ?? "the upload") }
            return transcript
        } catch let error as TingxieError {
            throw error.naming(audio, as: job.filename ?? "the upload")
        }
    }

    /// The server's hotwords merged with a request's; `nil` when there are none.
    /// - Throws: `TingxieError(.invalidArgument)` for a malformed or too long list.
    public func matcher(for hotwords: String?) throws -> HotwordMatcher? {
        let requested = try hotwords.map { try Hotword.parse($0, source: "hotwords") } ?? []
        let merged = try Hotword.merge(serverHotwords, requested)
        guard !merged.isEmpty else { return nil }
        guard let lexicon else { throw Self.missingDictionary }
        return HotwordMatcher(hotwords: merged, lexicon: lexicon)
    }

    static let missingDictionary = TingxieError(
        .invalidArgument, "hotwords need the Unihan readings and jieba's word list (Debian packages unicode-data and python3-jieba), which this server lacks")
}

/// The segments recognised so far of each job running in this process. A job's list lives
/// while it runs; its stored transcript is the truth afterwards.
final class RunningSegments: Sendable {
    /// Each job's segments, under the run that makes them: a run that lost its lease and ends
    /// after the job was claimed again here leaves the new run's list alone.
    private let jobs = Mutex<[String: (run: UInt64, segments: [Transcript.Segment])]>([:])
    private let runs = Atomic<UInt64>(0)
    private let observer = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Calls `handler` with a job's id each time it gets a segment.
    func observe(_ handler: @escaping @Sendable (String) -> Void) { observer.withLock { $0 = handler } }

    func begin(_ id: String) -> UInt64 {
        let run = runs.add(1, ordering: .relaxed).newValue
        jobs.withLock { $0[id] = (run, []) }
        return run
    }

    func end(_ id: String, run: UInt64) {
        jobs.withLock { jobs in
            if jobs[id]?.run == run { jobs[id] = nil }
        }
    }

    func append(_ segment: Transcript.Segment, to id: String) {
        jobs.withLock { $0[id]?.segments.append(segment) }
        observer.withLock { $0 }?(id)
    }

    /// The segments of job `id` from index `start` on (none when it is not running here).
    func segments(of id: String, from start: Int) -> ArraySlice<Transcript.Segment> {
        jobs.withLock { jobs in
            guard let segments = jobs[id]?.segments, start < segments.count else { return [] }
            return segments[start...]
        }
    }
}
