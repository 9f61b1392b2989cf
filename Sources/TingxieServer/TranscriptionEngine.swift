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
                running.append(segment, to: job.id, run: run)
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

    /// Adds a segment of run `run`; a run that is no longer the job's adds nothing.
    func append(_ segment: Transcript.Segment, to id: String, run: UInt64) {
        let current = jobs.withLock { jobs in
            guard jobs[id]?.run == run else { return false }
            jobs[id]?.segments.append(segment)
            return true
        }
        if current { observer.withLock { $0 }?(id) }
    }

    /// Where a follower is in a job's live segments: the run it reads and how many it has had.
    struct Cursor {
        var run: UInt64 = 0
        var sent = 0
    }

    /// The segments of job `id` the cursor has not had (none when it does not run here); a new
    /// run of the job (a retry) starts the cursor again.
    func next(of id: String, after cursor: inout Cursor) -> ArraySlice<Transcript.Segment> {
        jobs.withLock { jobs in
            guard let entry = jobs[id] else { return [] }
            if entry.run != cursor.run { cursor = Cursor(run: entry.run) }
            guard cursor.sent < entry.segments.count else { return [] }
            defer { cursor.sent = entry.segments.count }
            return entry.segments[cursor.sent...]
        }
    }

}
