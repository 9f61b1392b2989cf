import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TingxieCore
import TingxieServer

@Suite struct ServerRouteTests {
    @Test func probesAnswerAndUnknownPathsGetTheErrorShape() async throws {
        try await withTestServer { client, _ in
            #expect(try await client.get("/healthz").status == .ok)
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok)
            #expect(ready.json["model"] as? String == "fake")
            let missing = try await client.get("/v2/nothing")
            #expect(missing.status == .notFound)
            #expect(missing.errorCode == "not_found")
        }
    }

    @Test func aJobGoesFromUploadToTranscriptInEveryFormat() async throws {
        try await withTestServer { client, _ in
            let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 2))])
            #expect(response.status == .accepted)
            #expect(response.json["status"] as? String == "queued")
            #expect(abs((response.json["duration_s"] as? Double ?? 0) - 2) < 0.01)
            let id = try #require(response.json["id"] as? String)
            let job = try await client.waitUntilFinished(id)
            #expect(job["status"] as? String == "succeeded")
            #expect(job["attempts"] as? Int == 1)
            #expect(job["progress"] as? Double == 1)

            let json = try await client.get("/v1/jobs/\(id)/transcript")
            #expect(json.headers[.contentType] == "application/json")
            #expect((json.json["text"] as? String)?.hasPrefix("段") == true)
            #expect((json.json["segments"] as? [[String: Any]])?.count == 1)
            for (format, type) in [("txt", "text/plain; charset=utf-8"), ("srt", "application/x-subrip"), ("vtt", "text/vtt")] {
                let rendered = try await client.get("/v1/jobs/\(id)/transcript?format=\(format)")
                #expect(rendered.status == .ok)
                #expect(rendered.headers[.contentType] == type)
                #expect(rendered.text.contains("段"))
            }
            let unknown = try await client.get("/v1/jobs/\(id)/transcript?format=docx")
            #expect(unknown.status == .badRequest)
            #expect(unknown.errorCode == "invalid_argument")
        }
    }

    @Test func aRawAudioBodyIsAcceptedWithItsFilename() async throws {
        try await withTestServer { client, _ in
            let response = try await client.execute(uri: "/v1/jobs?filename=meeting.wav", method: .post,
                                                    headers: [.contentType: "audio/wav"], body: ByteBuffer(bytes: Upload.wav()))
            #expect(response.status == .accepted)
            #expect(response.json["filename"] as? String == "meeting.wav")
            let id = try #require(response.json["id"] as? String)
            #expect(try await client.waitUntilFinished(id)["status"] as? String == "succeeded")
        }
    }

    @Test func badRequestsGetTheirStatusAndCode() async throws {
        try await withTestServer { client, _ in
            let noFile = try await client.post("/v1/jobs", parts: [.field("language", "zh")])
            #expect(noFile.status == .badRequest)
            #expect(noFile.errorCode == "invalid_argument")

            let broken = try await client.execute(uri: "/v1/jobs", method: .post, headers: Upload.multipartHeaders,
                                                  body: ByteBuffer(string: "--\(Upload.boundary)\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"))
            #expect(broken.status == .badRequest)
            #expect(broken.text.contains("malformed multipart"))

            let weight = try await client.post("/v1/jobs", parts: [.file(Upload.wav()), .field("hotwords", "飞桨 99")])
            #expect(weight.status == .badRequest)
            #expect(weight.text.contains("weight"))

            let language = try await client.post("/v1/jobs", parts: [.file(Upload.wav()), .field("language", "en")])
            #expect(language.status == .badRequest)
            #expect(language.text.contains("supported: zh"), "\(language.text)")

            let text = try await client.execute(uri: "/v1/jobs", method: .post, headers: [.contentType: "text/plain"],
                                                body: ByteBuffer(string: "hello"))
            #expect(text.status == .unsupportedMediaType)
            #expect(text.errorCode == "unsupported_format")

            let random = try await client.post("/v1/jobs", parts: [.file(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }))])
            #expect(random.status == .unsupportedMediaType)

            let empty = try await client.post("/v1/jobs", parts: [.file(Data())])
            #expect(empty.status == .unprocessableContent)
            #expect(empty.errorCode == "invalid_audio")

            let noFrames = try await client.post("/v1/jobs", parts: [.file(WAVFixture.file([], sampleRate: 16_000))])
            #expect(noFrames.status == .unprocessableContent)
            #expect(noFrames.text.contains("holds no audio"))

            let unknownJob = try await client.get("/v1/jobs/0123456789abcdef0123456789abcdef")
            #expect(unknownJob.status == .notFound)
            let notAnID = try await client.get("/v1/jobs/..%2F..%2Fetc%2Fpasswd")
            #expect(notAnID.status == .notFound)

            let badLimit = try await client.get("/v1/jobs?limit=0")
            #expect(badLimit.status == .badRequest)
        }
    }

    @Test func tooLargeUploadsAre413AndLeaveNoFile() async throws {
        try await withTestServer(setup: {
            $0.maxUploadBytes = 100_000
            $0.maxDurationSeconds = 3
        }) { client, configuration in
            // A declared Content-Length over the limit is refused before the body is read: the
            // router test client sets the header from the body, so ServerProcessTests covers it.
            let streamed = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 4))])
            #expect(streamed.status == .contentTooLarge)
            #expect(streamed.errorCode == "too_large")
            #expect(streamed.text.contains("limit of 100000 bytes"))

            let long = try await client.post("/v1/jobs", parts: [.file(WAVFixture.file(Array(repeating: 0.1, count: 8000 * 4), sampleRate: 8000))])
            #expect(long.status == .contentTooLarge)
            #expect(long.text.contains("at most 3 s"))

            let field = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 1)), .field("hotwords", String(repeating: "词", count: 30_000))])
            #expect(field.status == .contentTooLarge)

            let stored = try FileManager.default.subpathsOfDirectory(atPath: configuration.dataDirectory.path)
                .filter { $0.hasPrefix("audio/") || $0.hasPrefix("uploads/") }
            #expect(stored.isEmpty, "files left behind: \(stored)")
        }
    }

    @Test func aFullQueueIsRefusedWith503AndRetryAfter() async throws {
        try await withTestServer(setup: {
            $0.workers.workers = 0
            $0.queue.maxQueuedJobs = 2
        }) { client, _ in
            _ = try await client.submit()
            _ = try await client.submit()
            let refused = try await client.post("/v1/jobs", parts: [.file(Upload.wav())])
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "queue_full")
            #expect(Int(refused.headers[.retryAfter] ?? "") ?? 0 >= 1)
            let system = try await client.get("/v1/system").json
            #expect((system["queue"] as? [String: Any])?["queued"] as? Int == 2)
        }
    }

    @Test func queuedJobsCanBeListedAndCanceled() async throws {
        try await withTestServer(setup: { $0.workers.workers = 0 }) { client, _ in
            var ids: [String] = []
            for _ in 0..<3 { ids.append(try await client.submit()) }

            let notYet = try await client.get("/v1/jobs/\(ids[0])/transcript")
            #expect(notYet.status == .conflict)
            #expect(notYet.errorCode == "job_not_finished")

            let first = try await client.get("/v1/jobs?limit=2").json
            let firstPage = try #require(first["jobs"] as? [[String: Any]])
            #expect(firstPage.compactMap { $0["id"] as? String } == [ids[2], ids[1]])
            let cursor = try #require(first["next_cursor"] as? String)
            let second = try await client.get("/v1/jobs?limit=2&cursor=\(cursor)").json
            #expect((second["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[0]])
            #expect(second["next_cursor"] is NSNull)

            let canceled = try await client.execute(uri: "/v1/jobs/\(ids[1])", method: .delete)
            #expect(canceled.status == .ok)
            #expect(canceled.json["status"] as? String == "canceled")
            let again = try await client.execute(uri: "/v1/jobs/\(ids[1])", method: .delete)
            #expect(again.status == .conflict)
            #expect(again.errorCode == "job_finished")
            let transcript = try await client.get("/v1/jobs/\(ids[1])/transcript")
            #expect(transcript.errorCode == "job_canceled")

            let queued = try await client.get("/v1/jobs?status=queued").json
            #expect((queued["jobs"] as? [[String: Any]])?.count == 2)
        }
    }

    @Test func aRunningJobIsStoppedByCancel() async throws {
        let recognizer = FakeRecognizer(delay: .milliseconds(300))
        try await withTestServer(recognizer: recognizer) { client, _ in
            // Forty tone bursts: forty model calls of 0.3 s each, 12 s in all.
            var samples: [Double] = []
            for _ in 0..<40 { samples += Array(repeating: 0.3, count: 8000) + Array(repeating: 0, count: 4000) }
            let id = try await client.submit(WAVFixture.file(samples, sampleRate: 16_000))
            for _ in 0..<500 where recognizer.pieceLengths.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
            }
            let canceled = try await client.execute(uri: "/v1/jobs/\(id)", method: .delete)
            #expect(canceled.json["status"] as? String == "canceled")
            // The decode stops: at most the call under way finishes, then no more calls.
            try await Task.sleep(for: .seconds(1))
            let afterCancel = recognizer.pieceLengths.count
            try await Task.sleep(for: .seconds(1))
            #expect(recognizer.pieceLengths.count == afterCancel, "the decode went on after the cancel")
            #expect(afterCancel < 40)
            #expect(try await client.get("/v1/jobs/\(id)").json["status"] as? String == "canceled")
        }
    }

    @Test func aBatchAggregatesItsJobs() async throws {
        try await withTestServer { client, _ in
            let response = try await client.post("/v1/batches", parts: [.file(Upload.wav(), filename: "a.wav"), .file(Upload.wav(seconds: 3), filename: "b.wav")])
            #expect(response.status == .accepted)
            let batch = try #require(response.json["id"] as? String)
            let jobs = try #require(response.json["jobs"] as? [[String: Any]])
            #expect(jobs.compactMap { $0["filename"] as? String } == ["a.wav", "b.wav"])
            var status = ""
            for _ in 0..<200 {
                let aggregate = try await client.get("/v1/batches/\(batch)").json
                status = aggregate["status"] as? String ?? ""
                if status == "succeeded" {
                    #expect((aggregate["counts"] as? [String: Int])?["succeeded"] == 2)
                    #expect(aggregate["progress"] as? Double == 1)
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(status == "succeeded")
            #expect(try await client.get("/v1/batches/0123456789abcdef0123456789abcdef").status == .notFound)
        }
    }

    @Test func clientFilenamesNeverBecomePaths() async throws {
        let names = ["../../etc/x", "..\\..\\win.ini", "/etc/passwd", "a\u{0}b.wav", String(repeating: "长", count: 10_000), "../audio/0123456789abcdef0123456789abcdef"]
        try await withTestServer { client, configuration in
            let root = configuration.dataDirectory.deletingLastPathComponent()
            for name in names {
                let response = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 1), filename: name)])
                #expect(response.status == .accepted)
                let shown = response.json["filename"] as? String ?? ""
                #expect(!shown.contains("/") && !shown.contains("\\") && !shown.contains("\u{0}") && shown.count <= 255)
                _ = try await client.waitUntilFinished(try #require(response.json["id"] as? String))
            }
            let everything = try FileManager.default.subpathsOfDirectory(atPath: root.path)
            let outside = everything.filter { !$0.hasPrefix("data") }
            #expect(outside.isEmpty, "files outside the data folder: \(outside)")
            let named = everything.filter { $0.hasPrefix("data/audio/") || $0.hasPrefix("data/uploads/") }
            #expect(named.allSatisfy { path in path.split(separator: "/").last.map { $0.allSatisfy(\.isHexDigit) } ?? false })
        }
    }

    @Test func apiKeysAreRequiredWhenConfigured() async throws {
        try await withTestServer(setup: { $0.apiKeys = ["k-one", "second-key"] }) { client, _ in
            let missing = try await client.get("/v1/system")
            #expect(missing.status == .unauthorized)
            #expect(missing.errorCode == "unauthorized")
            #expect(try await client.get("/v1/system", headers: [.authorization: "Bearer k-onf"]).status == .unauthorized)
            #expect(try await client.get("/v1/system", headers: [.authorization: "Bearer k-one-longer"]).status == .unauthorized)
            #expect(try await client.get("/v1/system", headers: [.authorization: "Bearer second-key"]).status == .ok)
            #expect(try await client.get("/healthz").status == .ok)
        }
    }

    @Test func corsAnswersOnlyConfiguredOrigins() async throws {
        try await withTestServer(setup: { $0.corsOrigins = ["https://asr.example.com"] }) { client, _ in
            let preflight = try await client.execute(uri: "/v1/jobs", method: .options,
                                                     headers: [.origin: "https://asr.example.com", .accessControlRequestMethod: "POST"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://asr.example.com")
            let error = try await client.get("/v1/jobs/0123456789abcdef0123456789abcdef", headers: [.origin: "https://asr.example.com"])
            #expect(error.headers[.accessControlAllowOrigin] == "https://asr.example.com")
            let other = try await client.get("/v1/system", headers: [.origin: "https://evil.example.net"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
        }
    }

    /// `stream=true`, as OpenAI's SDK reads it: a delta per segment, then the whole text.
    @Test func theOpenAIEndpointStreamsEachSegmentAsAnEvent() async throws {
        try await withTestServer(recognizer: FakeRecognizer(delay: .milliseconds(200))) { client, _ in
            // Three tones with pauses: three segments for the fake VAD.
            let rate = 16_000
            let samples = (0..<(4 * rate)).map { index -> Double in
                let t = Double(index) / Double(rate)
                return [(0.2, 0.8), (1.4, 2.0), (2.6, 3.2)].contains { t > $0.0 && t < $0.1 } ? 0.3 * sin(2 * .pi * 300 * t) : 0
            }
            let response = try await client.post("/v1/audio/transcriptions", parts: [
                .file(WAVFixture.file(samples, sampleRate: rate)), .field("model", "whisper-1"), .field("stream", "true"),
            ])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream; charset=utf-8")
            let events = response.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.compactMap { event -> [String: Any]? in
                guard event.hasPrefix("data: ") else { return nil }
                return try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any]
            }
            let deltas = events.filter { $0["type"] as? String == "transcript.text.delta" }.compactMap { $0["delta"] as? String }
            #expect(deltas.count == 3, "\(response.text)")
            #expect(events.last?["type"] as? String == "transcript.text.done")
            #expect(events.last?["text"] as? String == deltas.joined())
            for (stream, format) in [("yes", "json"), ("true", "srt")] {
                let refused = try await client.post("/v1/audio/transcriptions", parts: [
                    .file(Upload.wav()), .field("stream", stream), .field("response_format", format),
                ])
                #expect(refused.status == .badRequest, "stream=\(stream) response_format=\(format)")
            }
        }
    }

    @Test func theOpenAIEndpointAnswersInEveryResponseFormat() async throws {
        try await withTestServer(setup: { $0.maxSyncDurationSeconds = 5 }) { client, _ in
            let expected: [(String, String)] = [("json", "application/json"), ("text", "text/plain; charset=utf-8"),
                                                ("srt", "application/x-subrip"), ("vtt", "text/vtt"), ("verbose_json", "application/json")]
            for (format, type) in expected {
                let response = try await client.post("/v1/audio/transcriptions", parts: [
                    .file(Upload.wav(seconds: 2)), .field("model", "whisper-1"), .field("response_format", format),
                    .field("timestamp_granularities[]", "segment"),
                ])
                #expect(response.status == .ok, "\(format): \(response.text)")
                #expect(response.headers[.contentType] == type)
                #expect(response.text.contains("段"))
                if format == "verbose_json" {
                    #expect(abs((response.json["duration"] as? Double ?? 0) - 2) < 0.01)
                    #expect(response.json["task"] as? String == "transcribe")
                    #expect((response.json["segments"] as? [[String: Any]])?.first?["start"] is Double)
                }
            }
            let long = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav(seconds: 6)), .field("model", "x")])
            #expect(long.status == .contentTooLarge)
            #expect(long.text.contains("/v1/jobs"))
            let error = try #require(long.json["error"] as? [String: Any])
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["code"] as? String == "too_large")

            let format = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav()), .field("response_format", "xml")])
            #expect(format.status == .badRequest)

            let models = try await client.get("/v1/models").json
            let model = try #require((models["data"] as? [[String: Any]])?.first)
            #expect(model["id"] as? String == "fake")
            #expect((model["tingxie"] as? [String: Any])?["accepts_any_model_name"] as? Bool == true)
            // Nothing is left queued by refused or finished synchronous requests.
            #expect(try await client.get("/v1/jobs?status=queued").json["jobs"] as? [Any] != nil)
            #expect((try await client.get("/v1/jobs?status=queued").json["jobs"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func languageAndTaskGoFromTheRequestToTheModel() async throws {
        let multilingual = FakeRecognizer(multilingual: true)
        try await withTestServer(recognizer: multilingual) { client, _ in
            let named = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 2)), .field("language", "ja-JP")])
            #expect(named.status == .accepted)
            #expect(named.json["language"] as? String == "ja" && named.json["task"] as? String == "transcribe")
            _ = try await client.waitUntilFinished(try #require(named.json["id"] as? String))
            let transcript = try await client.get("/v1/jobs/\(try #require(named.json["id"] as? String))/transcript").json
            #expect(transcript["language"] as? String == "ja")

            // A job that names none gets the server's; OpenAI's endpoint has the model detect it.
            let plain = try await client.post("/v1/jobs", parts: [.file(Upload.wav(seconds: 2))])
            #expect(plain.json["language"] as? String == "zh")
            let openAI = try await client.post("/v1/audio/transcriptions", parts: [
                .file(Upload.wav(seconds: 2)), .field("model", "whisper-1"), .field("response_format", "verbose_json"),
            ])
            #expect(openAI.json["language"] as? String == "en", "\(openAI.text)")

            let translated = try await client.post("/v1/audio/translations", parts: [
                .file(Upload.wav(seconds: 2)), .field("model", "whisper-1"), .field("response_format", "verbose_json"),
            ])
            #expect(translated.status == .ok, "\(translated.text)")
            #expect((translated.json["text"] as? String)?.hasPrefix("Piece ") == true, "\(translated.text)")
            #expect(translated.json["task"] as? String == "translate" && translated.json["language"] as? String == "en")
            let seen = multilingual.options.withLock { $0 }
            #expect(seen.contains(RecognitionOptions(language: "ja")) && seen.contains(RecognitionOptions(language: "zh")))
            #expect(seen.contains(RecognitionOptions(language: ModelInfo.detect, task: .translate)))

            let unsupported = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav()), .field("language", "klingon")])
            #expect(unsupported.status == .badRequest)
            #expect(unsupported.text.contains("supported: zh, en, ja, or auto to detect it"), "\(unsupported.text)")
            let details = try #require(((try await client.get("/v1/models").json["data"] as? [[String: Any]])?.first)?["tingxie"] as? [String: Any])
            #expect(details["languages"] as? [String] == ["zh", "en", "ja"])
            #expect(details["language_detection"] as? Bool == true && details["translation"] as? Bool == true)
        }
        // A model with one language neither detects nor translates; the refusal says what it does.
        try await withTestServer { client, _ in
            let translate = try await client.post("/v1/audio/translations", parts: [.file(Upload.wav()), .field("model", "whisper-1")])
            #expect(translate.status == .badRequest)
            #expect(translate.text.contains("cannot translate; it transcribes zh"), "\(translate.text)")
            let detect = try await client.post("/v1/jobs", parts: [.file(Upload.wav()), .field("language", "auto")])
            #expect(detect.status == .badRequest)
            #expect(detect.text.contains("cannot detect the language"), "\(detect.text)")
            let openAI = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav()), .field("model", "whisper-1")])
            #expect(openAI.status == .ok, "no language: the model's own")
        }
    }

    /// `GET /v1/jobs/{id}/events`: segments arrive while the job still runs, then the job.
    @Test func aJobsSegmentsStreamWhileItRuns() async throws {
        try await withTestServer(recognizer: FakeRecognizer(delay: .milliseconds(700)), testing: .live) { client, _ in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            // Three tones with pauses: three segments for the fake VAD, 0.7 s of "decoding" each.
            let rate = 16_000
            let samples = (0..<(4 * rate)).map { index -> Double in
                let t = Double(index) / Double(rate)
                return [(0.2, 0.8), (1.4, 2.0), (2.6, 3.2)].contains { t > $0.0 && t < $0.1 } ? 0.3 * sin(2 * .pi * 300 * t) : 0
            }
            let submitted = try await LiveHTTP.submit(base, WAVFixture.file(samples, sampleRate: rate))
            let id = try #require(submitted.json["id"] as? String)
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/v1/jobs/\(id)/events"), timeout: .seconds(60))
            #expect(response.headers["content-type"].first == "text/event-stream; charset=utf-8")
            var text = ""
            var statusAtFirstSegment: String?
            for try await chunk in response.body {
                text += String(buffer: chunk)
                if statusAtFirstSegment == nil, text.contains("job.segment") {
                    statusAtFirstSegment = try await LiveHTTP.request(base + "/v1/jobs/\(id)").json["status"] as? String
                }
            }
            #expect(statusAtFirstSegment == "running", "\(text)")
            let events = text.components(separatedBy: "\n\n").compactMap { event -> [String: Any]? in
                guard event.hasPrefix("data: ") else { return nil }
                return try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any]
            }
            let segments = events.filter { $0["type"] as? String == "job.segment" }.compactMap { $0["segment"] as? [String: Any] }
            #expect(segments.compactMap { $0["id"] as? Int } == [0, 1, 2], "\(text)")
            #expect(events.contains { $0["type"] as? String == "job.progress" && $0["status"] as? String == "running" })
            let done = try #require(events.last)
            #expect(done["type"] as? String == "job.done")
            #expect((done["job"] as? [String: Any])?["status"] as? String == "succeeded")
            let transcript = try await LiveHTTP.request(base + "/v1/jobs/\(id)/transcript").json
            #expect(transcript["text"] as? String == segments.compactMap { $0["text"] as? String }.joined())

            // A finished job: its stored segments, then the job; an unknown one: 404 in the error shape.
            let again = try await LiveHTTP.request(base + "/v1/jobs/\(id)/events")
            #expect(again.body.components(separatedBy: "job.segment").count - 1 == 3 && again.body.contains("job.done"))
            let unknown = try await LiveHTTP.request(base + "/v1/jobs/0123456789abcdef0123456789abcdef/events")
            #expect(unknown.status == 404 && (unknown.json["error"] as? [String: Any])?["code"] as? String == "not_found")
        }
    }
}
