import Foundation
import Hummingbird
import NIOCore
import TingxieCore
import TingxieJobs
import TingxiePipeline

/// OpenAI-compatible `POST /v1/audio/transcriptions` and `/v1/audio/translations`: synchronous
/// for the client, but run as a durable job through the same queue, limits and workers as every
/// other upload.
struct OpenAIController {
    typealias Context = APIRequestContext
    let service: JobService

    enum ResponseFormat: String { case json, text, srt, vtt, verboseJSON = "verbose_json" }

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/audio/transcriptions") { request, context in try await answer(request, context: context, task: .transcribe) }
        router.post("/v1/audio/translations") { request, context in try await answer(request, context: context, task: .translate) }
    }

    /// Transcribes or translates the uploaded file. A request that names no language has it
    /// detected where the model can; a translation always has it detected.
    func answer(_ request: Request, context: Context, task: RecognitionOptions.Task) async throws -> Response {
        if task == .translate {
            // Before the upload is read: no model change can make this request succeed.
            try service.engine.model.check(RecognitionOptions(task: .translate))
        }
        let limit = service.configuration.maxSyncDurationSeconds
        var format = ResponseFormat.json
        var streaming = false
        let fieldNames = JobService.FieldNames(hotwords: "prompt", hotwordsArePrompt: true,
                                               language: task == .translate ? "" : "language",
                                               detectsOmittedLanguage: true, task: task)
        let (jobs, fields) = try await service.submit(request, caller: context.caller, maxFiles: 1, fieldNames: fieldNames) { upload in
            let name = upload.fields["response_format"].map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let requested = ResponseFormat(rawValue: name.isEmpty ? "json" : name) else {
                throw TingxieError(.invalidArgument, "response_format \"\(name.prefix(20))\" is not one of json, text, srt, verbose_json, vtt")
            }
            format = requested
            switch upload.fields["stream"]?.trimmingCharacters(in: .whitespaces).lowercased() {
            case nil, "false": streaming = false
            case "true": streaming = true
            case let other?: throw TingxieError(.invalidArgument, "stream must be true or false, not \"\(other.prefix(20))\"")
            }
            if streaming, format != .json, format != .text {
                throw TingxieError(.invalidArgument, "stream=true sends text events; response_format must be json or text")
            }
            // Ignored (decoding is greedy), but still a number a client sent.
            if let temperature = upload.fields["temperature"] {
                _ = try ClientNumber.number(temperature, field: "temperature", in: 0...1)
            }
            if let file = upload.files.first, file.durationS > limit {
                throw TingxieError(.tooLarge, String(format: "the audio is %.0f s long; this endpoint transcribes up to %.0f s while the client waits. Submit longer files to POST /v1/jobs", file.durationS, limit))
            }
        }
        let job = jobs[0]
        if streaming {
            do {
                return events(for: job, context: context, place: try service.followerPlace())
            } catch {
                _ = try? await service.cancel(job.id, for: .server)
                throw error
            }
        }
        let finished: Job
        do {
            let timeout = service.configuration.workers.timeout(for: job) + .seconds(600)
            finished = try await context.whileClientStays { [service] in try await service.waitForResult(job.id, timeout: timeout) }
        } catch {
            // The client left or the wait timed out: nobody will collect this result.
            _ = try? await service.cancel(job.id, for: .server)
            throw error
        }
        if finished.status == .failed, let error = finished.error {
            throw error
        }
        let transcript = try await service.transcript(of: finished)
        return render(transcript, format: format, granularities: Self.granularities(fields))
    }

    /// `stream=true`: server-sent events as OpenAI's SDK reads them: a `transcript.text.delta`
    /// for each segment as soon as a worker has recognised it (a long file streams while it is
    /// transcribed), then `transcript.text.done` with the whole text. A failure is an event
    /// with `error`; a client that goes away cancels the job.
    private func events(for job: Job, context: Context, place: FollowerPlace) -> Response {
        let service = service
        // Deltas are joined as the whole text is: without spaces in Chinese, Japanese and Korean.
        let spoken = job.language.flatMap { $0 == ModelInfo.detect ? nil : $0 }
        let body = ResponseBody { writer in
            defer { withExtendedLifetime(place) {} }
            var sent = 0
            var events: [any Encodable] = []
            do {
                let (_, transcript) = try await context.watchingDeparture { watcher in
                    try await service.follow(job.id, timeout: service.configuration.workers.timeout(for: job) + .seconds(600),
                                             departure: watcher) { current, segments in
                        for segment in segments {
                            let separator = TranscriptionPipeline.separator(before: segment.text, language: spoken, task: job.task)
                            events.append(TextEvent(type: "transcript.text.delta", delta: (sent > 0 ? separator : "") + segment.text))
                            sent += 1
                        }
                        // A failed or canceled job: its error comes from the transcript it lacks.
                        if current.status.isTerminal, current.status != .succeeded { _ = try await service.transcript(of: current) }
                        try await EventStream.write(events, to: &writer)
                        events = []
                    }
                }
                if let transcript { events.append(TextEvent(type: "transcript.text.done", text: transcript.text)) }
            } catch let error as TingxieError {
                events.append(EventStream.ErrorEvent(APIError(error), style: .openAI))
            } catch let error as APIError {
                events.append(EventStream.ErrorEvent(error, style: .openAI))
            } catch {
                // The client went away (it closed, or a write failed) or the wait was cancelled.
                _ = try? await service.cancel(job.id, for: .server)
                throw error
            }
            do {
                try await EventStream.write(events, to: &writer)
            } catch {
                _ = try? await service.cancel(job.id, for: .server)
                throw error
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: EventStream.headers, body: body)
    }

    /// OpenAI's `transcript.text.delta` and `transcript.text.done`.
    struct TextEvent: Encodable {
        var type: String
        var delta: String?
        var text: String?
    }

    /// `timestamp_granularities[]` arrives as repeated bracket keys; the form keeps the last,
    /// so both spellings and a comma-separated value are read.
    static func granularities(_ fields: [String: String]) -> Set<String> {
        let values = [fields["timestamp_granularities[]"], fields["timestamp_granularities"]].compactMap { $0 }
        return Set(values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
    }

    private func render(_ transcript: Transcript, format: ResponseFormat, granularities: Set<String>) -> Response {
        var response = switch format {
        case .json: JSONResponse.make(JSONDTO(text: transcript.text, warnings: transcript.warnings))
        case .text: JSONResponse.text(transcript.text + "\n", contentType: "text/plain; charset=utf-8")
        case .srt: JSONResponse.text(OutputFormat.srt.render(transcript), contentType: OutputFormat.srt.contentType)
        case .vtt: JSONResponse.text(OutputFormat.vtt.render(transcript), contentType: OutputFormat.vtt.contentType)
        case .verboseJSON: JSONResponse.make(VerboseDTO(transcript, granularities: granularities))
        }
        if let warnings = transcript.warnings, !warnings.isEmpty {
            response.headers[.tingxieWarnings] = String(warnings.count)
        }
        return response
    }

    /// OpenAI's `json`, with what the transcript lacks when it lacks something.
    struct JSONDTO: Encodable {
        var text: String
        var warnings: [String]?
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

    var task: String
    var language: String
    var duration: Double
    var text: String
    var segments: [Segment]?
    /// From the model's token timestamps; absent when the model gives none (`token_timestamps`
    /// in `/v1/models`): times are never made up.
    var words: [Word]?
    /// What the transcript lacks (audio that could not be read), when it lacks something.
    var warnings: [String]?

    init(_ transcript: Transcript, granularities: Set<String>) {
        task = (transcript.task ?? .transcribe).rawValue
        // A translation's text is English, as OpenAI reports it.
        language = transcript.task == .translate ? "en" : transcript.language ?? "zh"
        duration = transcript.durationS
        text = transcript.text
        warnings = transcript.warnings
        if granularities.isEmpty || granularities.contains("segment") {
            segments = transcript.segments.map { Segment(id: $0.id, start: $0.start, end: $0.end, text: $0.text) }
        }
        let timed = transcript.segments.contains { $0.timestamps != nil }
        if granularities.contains("word"), timed || transcript.segments.isEmpty {
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
