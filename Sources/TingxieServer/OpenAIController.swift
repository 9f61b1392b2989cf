import Foundation
import Hummingbird
import TingxieCore
import TingxieJobs

/// OpenAI-compatible `POST /v1/audio/transcriptions`: synchronous for the client, but run as a
/// durable job through the same queue, limits and workers as every other upload.
struct OpenAIController<Context: RequestContext> {
    let service: JobService

    enum ResponseFormat: String { case json, text, srt, vtt, verboseJSON = "verbose_json" }

    func addRoutes(to router: Router<Context>) {
        router.post("/v1/audio/transcriptions", use: transcribe)
    }

    @Sendable func transcribe(request: Request, context: Context) async throws -> Response {
        let limit = service.configuration.maxSyncDurationSeconds
        var format = ResponseFormat.json
        let (jobs, fields) = try await service.submit(request, maxFiles: 1, fieldNames: .init(hotwords: "prompt", hotwordsArePrompt: true)) { upload in
            let name = upload.fields["response_format"].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let requested = ResponseFormat(rawValue: name.isEmpty ? "json" : name) else {
                throw TingxieError(.invalidArgument, "response_format \"\(name.prefix(20))\" is not one of json, text, srt, verbose_json, vtt")
            }
            format = requested
            // Ignored (decoding is greedy), but still a number a client sent.
            if let temperature = upload.fields["temperature"] {
                _ = try ClientNumber.number(temperature, field: "temperature", in: 0...1)
            }
            if let file = upload.files.first, file.durationS > limit {
                throw TingxieError(.tooLarge, String(format: "the audio is %.0f s long; this endpoint transcribes up to %.0f s while the client waits. Submit longer files to POST /v1/jobs", file.durationS, limit))
            }
        }
        let job = jobs[0]
        let finished: Job
        do {
            finished = try await service.waitForResult(job.id, timeout: service.configuration.workers.timeout(for: job) + .seconds(600))
        } catch {
            // The client gave up or the wait timed out: nobody will collect this result.
            _ = try? await service.cancel(job.id)
            throw error
        }
        if finished.status == .failed, let error = finished.error {
            throw error
        }
        let transcript = try await service.transcript(of: finished)
        return render(transcript, format: format, granularities: Self.granularities(fields))
    }

    /// `timestamp_granularities[]` arrives as repeated bracket keys; the form keeps the last,
    /// so both spellings and a comma-separated value are read.
    static func granularities(_ fields: [String: String]) -> Set<String> {
        let values = [fields["timestamp_granularities[]"], fields["timestamp_granularities"]].compactMap { $0 }
        return Set(values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
    }

    private func render(_ transcript: Transcript, format: ResponseFormat, granularities: Set<String>) -> Response {
        switch format {
        case .json: JSONResponse.make(["text": transcript.text])
        case .text: JSONResponse.text(transcript.text + "\n", contentType: "text/plain; charset=utf-8")
        case .srt: JSONResponse.text(OutputFormat.srt.render(transcript), contentType: OutputFormat.srt.contentType)
        case .vtt: JSONResponse.text(OutputFormat.vtt.render(transcript), contentType: OutputFormat.vtt.contentType)
        case .verboseJSON: JSONResponse.make(VerboseDTO(transcript, granularities: granularities))
        }
    }
}

/// OpenAI's `verbose_json`: `duration` is the audio's length, `words` sits at the top level.
struct VerboseDTO: Encodable {
    struct Segment: Encodable {
        var id: Int
        var seek = 0
        var start: Double
        var end: Double
        var text: String
        var tokens: [Int] = []
        var temperature = 0.0
        var avg_logprob = 0.0
        var compression_ratio = 1.0
        var no_speech_prob = 0.0
    }

    struct Word: Encodable {
        var word: String
        var start: Double
        var end: Double
    }

    var task = "transcribe"
    var language: String
    var duration: Double
    var text: String
    var segments: [Segment]?
    /// From the model's token timestamps; empty when the model gives none (see `/v1/models`).
    var words: [Word]?

    init(_ transcript: Transcript, granularities: Set<String>) {
        language = transcript.language ?? "zh"
        duration = transcript.durationS
        text = transcript.text
        if granularities.isEmpty || granularities.contains("segment") {
            segments = transcript.segments.map { Segment(id: $0.id, start: $0.start, end: $0.end, text: $0.text) }
        }
        if granularities.contains("word") {
            words = transcript.segments.flatMap { segment -> [Word] in
                guard let tokens = segment.tokens, let times = segment.timestamps, tokens.count == times.count else { return [] }
                return tokens.indices.map { index in
                    Word(word: tokens[index], start: times[index],
                         end: index + 1 < times.count ? times[index + 1] : segment.end)
                }
            }
        }
    }
}
