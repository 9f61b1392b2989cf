import Foundation
import Synchronization
import Testing
import TingxieText

/// The real server binary on loopback: crashes, overload and hostile input.
@Suite(.serialized) struct ServerProcessTests {
    @Test(.enabled(if: TestData.tinyModelAvailable, TestData.tinyModelReason))
    func backPressureRefusesExactlyTheExcess() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let queueLimit = 5, excess = 3
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--workers", "0", "--max-queued-jobs", "\(queueLimit)"])
        let audio = Upload.wav(seconds: 2)
        let base = server.baseURL
        let replies = try await withThrowingTaskGroup(of: (LiveHTTP.Reply, Duration).self) { group in
            for index in 0..<(queueLimit + excess) {
                group.addTask {
                    let start = ContinuousClock.now
                    let reply = try await LiveHTTP.submit(base, audio, filename: "\(index).wav")
                    return (reply, .now - start)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let refused = replies.filter { $0.0.status == 503 }
        #expect(replies.filter { $0.0.status == 202 }.count == queueLimit)
        #expect(refused.count == excess)
        #expect(refused.allSatisfy { $0.0.json["error"] != nil && Int($0.0.headers.first(name: "Retry-After") ?? "") != nil })
        let slowest = refused.map(\.1).max() ?? .zero
        print("back-pressure: \(refused.count) of \(replies.count) refused; slowest refusal \(slowest)")

        // A body that declares more than the limit is refused from its headers alone.
        let declared = try LiveHTTP.rawStatusLine(port: server.port, head: "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nContent-Length: 100000000000\r\n\r\n", body: Data("RIFF".utf8))
        #expect(declared.hasPrefix("HTTP/1.1 413"), "\(declared)")
        #expect(try await LiveHTTP.request(server.baseURL + "/healthz").status == 200)
    }

    @Test(.enabled(if: TestData.tinyModelAvailable, TestData.tinyModelReason))
    func hostileUploadsGet4xxAndTheServerKeepsServing() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--max-upload-mb", "1", "--max-duration", "30"])
        var lying = WAVFixture.file(Array(repeating: 0.2, count: 8), sampleRate: 16_000, dataSizeOverride: 0xFFFF_FFFF)
        lying = lying.prefix(60)
        let elf = try Data(contentsOf: URL(fileURLWithPath: "/bin/ls")).prefix(200_000)
        let cases: [(String, Data, ClosedRange<Int>)] = [
            ("random.mp3", Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }), 415...422),
            ("ls.wav", elf, 415...422),
            ("archive.zip", Data([0x50, 0x4B, 0x03, 0x04]) + Data(repeating: 7, count: 1000), 415...422),
            ("list.m3u8", Data("#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n".utf8), 415...415),
            ("concat.txt", Data("ffconcat version 1.0\nfile /etc/passwd\n".utf8), 415...415),
            ("empty.wav", Data(), 422...422),
            ("truncated.wav", WAVFixture.file(Array(repeating: 0.1, count: 16_000), sampleRate: 16_000).prefix(30), 422...422),
            ("huge.wav", Upload.wav(seconds: 40), 413...413),
            ("long.wav", WAVFixture.file(Array(repeating: 0.1, count: 8000 * 40), sampleRate: 8000, bits: 8), 413...413),
        ]
        for (name, data, expected) in cases {
            let reply = try await LiveHTTP.submit(server.baseURL, data, filename: name)
            #expect(expected.contains(reply.status), "\(name): \(reply.status) \(reply.body)")
            #expect(reply.json["error"] != nil, "\(name): \(reply.body)")
        }
        // The lying header is read for what the file holds: a job that ends, one way or the other.
        let lyingReply = try await LiveHTTP.submit(server.baseURL, lying, filename: "lying.wav")
        #expect([202, 422].contains(lyingReply.status), "\(lyingReply.body)")
        let good = try await LiveHTTP.submit(server.baseURL, Upload.wav(seconds: 2))
        #expect(good.status == 202)
        let ids = [good.json["id"], lyingReply.json["id"]].compactMap { $0 as? String }
        let jobs = try await LiveHTTP.waitForJobs(server.baseURL, ids, limit: .seconds(60))
        #expect(jobs[ids[0]]?["status"] as? String == "succeeded")
        #expect(jobs.values.allSatisfy { ["succeeded", "failed"].contains($0["status"] as? String ?? "") })
        #expect(try await LiveHTTP.request(server.baseURL + "/healthz").status == 200)
        #expect(server.process.isRunning)
        let stray = try FileManager.default.subpathsOfDirectory(atPath: root.appendingPathComponent("data/uploads").path)
        #expect(stray.isEmpty, "partial uploads left: \(stray)")
    }

    @Test(.enabled(if: TestData.tinyModelAvailable, TestData.tinyModelReason))
    func aTricklingUploadIsCutOffAndOthersAreServed() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.tinyModel),
                                             arguments: ["--min-upload-rate", "1000", "--upload-rate-grace", "1"])
        let port = server.port
        let base = server.baseURL
        // One byte every 100 ms (10 bytes/s) against a minimum of 1000 bytes/s.
        let trickling = Task.detached {
            try LiveHTTP.rawExchange(port: port, head: "POST /v1/jobs?filename=slow.wav HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\n",
                                     trickle: Data(repeating: 0x52, count: 60), every: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await LiveHTTP.request(base + "/healthz").status == 200)
        let reply = try await LiveHTTP.submit(base, Upload.wav(seconds: 1))
        #expect(reply.status == 202, "a normal upload during the trickle: \(reply.body)")
        let status = try await trickling.value
        #expect(status.hasPrefix("HTTP/1.1 408"), "\(status)")
    }

    @Test(.enabled(if: TestData.realModelsAvailable, TestData.skipReason))
    func killNineLosesNoAcceptedJob() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data")
        let model = try #require(TestData.whisperBase)
        let corpus = try #require(TestData.corpus)
        var server = try await ServerProcess(dataDirectory: data, model: model, arguments: ["--workers", "2"])
        var ids: [String] = []
        for index in 1...8 {
            let file = corpus.appendingPathComponent(String(format: "%03d.wav", index))
            let reply = try await LiveHTTP.submit(server.baseURL, try Data(contentsOf: file), filename: file.lastPathComponent)
            #expect(reply.status == 202)
            ids.append(try #require(reply.json["id"] as? String))
        }
        var kills = 0
        var killedWhileRunning = Set<String>()
        for _ in 0..<2 {
            // Kill as soon as jobs are running.
            for _ in 0..<300 {
                let running = try await LiveHTTP.request(server.baseURL + "/v1/jobs?status=running").json["jobs"] as? [[String: Any]] ?? []
                if !running.isEmpty {
                    killedWhileRunning.formUnion(running.compactMap { $0["id"] as? String })
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            server.stop(signal: SIGKILL)
            kills += 1
            server = try await ServerProcess(dataDirectory: data, model: model, arguments: ["--workers", "2"])
        }
        let restarted = ContinuousClock.now
        let jobs = try await LiveHTTP.waitForJobs(server.baseURL, ids, limit: .seconds(180))
        let recovery = ContinuousClock.now - restarted
        let succeeded = ids.filter { jobs[$0]?["status"] as? String == "succeeded" }
        #expect(succeeded.count == ids.count, "lost jobs: \(ids.filter { !succeeded.contains($0) }.map { jobs[$0] ?? [:] })")
        #expect(!killedWhileRunning.isEmpty, "no job was running when the server was killed")
        var results = 0
        for id in ids {
            let transcript = try await LiveHTTP.request(server.baseURL + "/v1/jobs/\(id)/transcript?format=txt")
            #expect(transcript.status == 200 && !transcript.body.isEmpty)
            results += transcript.status == 200 ? 1 : 0
        }
        let reexecuted = ids.filter { (jobs[$0]?["attempts"] as? Int ?? 0) > 1 }
        #expect(Set(reexecuted).isSubset(of: killedWhileRunning), "only jobs that were running when killed ran again")
        print("kill -9: jobs \(ids.count), kills \(kills), lost \(ids.count - succeeded.count), results \(results), re-executed \(reexecuted.count), all done \(recovery) after the last restart")
    }

    @Test(.enabled(if: TestData.openAISDKAvailable, "needs the real models and the openai package from scripts/setup --test; run `make test`"))
    func theOfficialOpenAISDKTranscribes() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.whisperBase),
                                             arguments: ["--api-key", "sdk-test-key"])
        let corpus = try #require(TestData.corpus)
        let (status, data) = try await runPythonFixture("openai_client.py", ["formats", server.baseURL + "/v1", "sdk-test-key",
                                                                     corpus.appendingPathComponent("002.wav").path])
        #expect(status == 0, "\(server.logText.suffix(2000))")
        let results = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let expected = try #require(try TestData.transcripts(corpus).first { $0.id == "002" }?.text)
        let text = try #require(results["json"] as? String)
        #expect(ErrorRate.characterErrorRate([(text, expected)]) < 0.25, "\(text)")
        #expect(results["text"] as? String == text)
        #expect((results["srt"] as? String)?.contains(" --> ") == true)
        #expect((results["vtt"] as? String)?.hasPrefix("WEBVTT") == true)
        let verbose = try #require(results["verbose_json"] as? [String: Any])
        #expect(abs((verbose["duration"] as? Double ?? 0) - 4.149) < 0.05)
        #expect((verbose["segments"] as? Int ?? 0) >= 1)
        #expect(verbose["language"] as? String == "zh")
        let stream = try #require(results["stream"] as? [String: [String]])
        #expect(stream["done"] == [text])
        #expect(stream["deltas"]?.isEmpty == false && stream["deltas"]?.joined() == text)
        #expect(results["unauthorized"] as? Int == 401)
    }

    /// With Whisper base and the silero VAD: the first 22.5 s of the meeting recording (three whole
    /// sentences, the last ending at 20.8 s: each closes at a pause, none at the end of the input)
    /// streamed in real time (2pass) shows words of each sentence before the sentence ends, and the sentences
    /// the stream settles on are what transcribing the same audio as a file sentence by sentence
    /// gives (a file's sentences are otherwise decoded together, with their context, and cut at
    /// pauses inside VAD segments: close to it). Prints the time from each sentence's start to its first partial.
    @Test(.enabled(if: TestData.realModelsAvailable, TestData.skipReason))
    func liveWhisperShowsWordsBeforeEachSentenceEnds() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.whisperBase))
        defer { server.stop() }
        let meeting = try #require(TestData.root).appendingPathComponent("corpus/zh-tts/long/meeting-10min.wav")
        let samples = Array(try TestData.samples(meeting).prefix(22_500 * 16))
        let pcm = StreamClient.pcm(samples)
        let inbox = Mutex<Inbox?>(nil)
        let started = ContinuousClock.now
        let messages = try await StreamClient(port: server.port).converse(
            first: .text(#"{"mode": "2pass", "wav_name": "meeting", "is_speaking": true}"#), audio: pcm, pace: .milliseconds(100)
        ) { received in inbox.withLock { $0 = received } }
        let arrivals = try #require(inbox.withLock { $0 }).arrivals.withLock { $0 }.map { ($0 - started).seconds }
        let sentences = messages.enumerated().filter { $0.element["mode"] as? String == "2pass-offline" }
        #expect(sentences.count >= 3, "\(messages)")
        // Each sentence longer than 2 s got words shown before it ended.
        var delays: [Double] = []
        for (index, sentence) in sentences.enumerated() {
            let start = Double(sentence.element["start_time"] as? Int ?? 0) / 1000
            let end = Double(sentence.element["end_time"] as? Int ?? 0) / 1000
            let previous = index == 0 ? -1 : sentences[index - 1].offset
            let partials = (previous + 1..<sentence.offset).filter { messages[$0]["mode"] as? String == "2pass-online" }
            if end - start > 2 { #expect(!partials.isEmpty, "no partial for the sentence at \(start) s: \(messages)") }
            if let first = partials.first { delays.append(arrivals[first] - start) }
        }
        print("live partials: first partial after sentence start, seconds: " + delays.map { String(format: "%.2f", $0) }.joined(separator: ", "))
        // The same audio as a file: sentence by sentence, and as the server transcribes files.
        let wav = WAVFixture.file(samples.map(Double.init), sampleRate: 16_000)
        let file = root.appendingPathComponent("meeting-22s.wav")
        try wav.write(to: file)
        // With one ONNX thread and sherpa-onnx's tail padding, as the server decodes.
        let alone = try await CLI.run(["transcribe", file.path, "--model-dir", try #require(TestData.whisperBase).path,
                                       "--merge-seconds", "0", "--no-split-stretches", "--threads", "1", "--tail-padding", "1000", "--quiet"])
        #expect(alone.status == 0, "\(alone.stderr)")
        let body = Upload.multipart([.file(wav), .field("model", "whisper"), .field("language", "zh")])
        let offline = try await LiveHTTP.request(server.baseURL + "/v1/audio/transcriptions", method: .POST,
                                                 headers: [("Content-Type", "multipart/form-data; boundary=\(Upload.boundary)")],
                                                 body: Data(body.readableBytesView))
        #expect(offline.status == 200, "\(offline.body)")
        // The stream's last message (its end) has no text.
        let live = sentences.compactMap { $0.element["text"] as? String }.filter { !$0.isEmpty }
        print("live: \(live.joined())\nfile: \(offline.json["text"] as? String ?? "")")
        #expect(live == alone.stdout.split(separator: "\n").map(String.init))
    }

    @Test(.enabled(if: TestData.openAISDKAvailable && TestData.espeak != nil,
                   "needs the real models, the openai package and espeak-ng from scripts/setup --test; run `make test`"))
    func theOpenAISDKTranslatesAndNamesOrDetectsTheLanguage() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let english = try await TestData.englishSpeech(in: root)
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.whisperBase))
        // The system view says how Whisper's pieces are made: timed stretches, merged sentences.
        let model = try await LiveHTTP.request(server.baseURL + "/v1/system").json["model"] as? [String: Any]
        #expect(model?["segment_timestamps"] as? Bool == true && model?["token_timestamps"] as? Bool == false, "\(model ?? [:])")
        #expect(model?["merge_target_s"] as? Double == 25, "\(model ?? [:])")
        let mandarin = try #require(TestData.corpus).appendingPathComponent("002.wav")
        let (status, data) = try await runPythonFixture("openai_client.py", ["languages", server.baseURL + "/v1", "unused", mandarin.path, english.path])
        #expect(status == 0, "\(server.logText.suffix(2000))")
        let results = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        print("openai SDK: translation \(results["translation"] ?? ""); English \(results["english"] ?? "")")

        // English words, no Chinese characters (Whisper base translates loosely: the words vary).
        let translation = try #require(results["translation"] as? String)
        #expect(!translation.unicodeScalars.contains { $0.properties.isIdeographic }, "\(translation)")
        #expect(translation.split(separator: " ").filter { $0.allSatisfy { $0.isASCII } }.count >= 4, "\(translation)")
        #expect(results["translation_verbose"] as? [String: String] == ["task": "translate", "language": "en"])

        func words(_ text: String) -> [String] {
            text.lowercased().split { !$0.isLetter }.map(String.init)
        }
        let said = words(TestData.englishSentence)
        for key in ["english", "detected"] {
            let text = try #require(key == "english" ? results[key] as? String : (results[key] as? [String: Any])?["text"] as? String)
            let heard = Set(words(text))
            #expect(said.filter(heard.contains).count >= said.count * 3 / 4, "\(key): \(text)")
        }
        #expect((results["detected"] as? [String: Any])?["language"] as? String == "en")

        // Mandarin without a language: detected, in Simplified characters; Whisper gives no token
        // timestamps, so no words at all.
        let detected = try #require(results["mandarin_detected"] as? [String: Any])
        #expect(detected["language"] as? String == "zh")
        let corpus = try #require(TestData.corpus)
        let reference = try #require(try TestData.transcripts(corpus).first { $0.id == "002" }?.text)
        #expect(ErrorRate.characterErrorRate([(detected["text"] as? String ?? "", reference)]) < 0.25, "\(detected)")
        #expect(detected["words"] is NSNull, "\(detected)")
        #expect((detected["segments"] as? Int ?? 0) >= 1)

        let unsupported = try #require(results["unsupported"] as? [String: Any])
        #expect(unsupported["status"] as? Int == 400)
        let message = unsupported["message"] as? String ?? ""
        #expect(message.contains("\"xx\"") && message.contains("zh, ") && message.contains("en") && message.contains("auto"), "\(message)")
    }

    @Test(.enabled(if: TestData.openAISDKAvailable && TestData.generatedModels != nil,
                   "needs the generated models, the VAD and the openai package; run `make test`"))
    func wordsComeFromTheModelsTokenTimestamps() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        // The tiny transducer says "甲" for every piece of speech, with a token timestamp.
        let model = try #require(TestData.generatedModels).appendingPathComponent("transducer-tiny")
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: model)
        let audio = try #require(TestData.corpus).appendingPathComponent("002.wav")
        let (status, data) = try await runPythonFixture("openai_client.py", ["words", server.baseURL + "/v1", "unused", audio.path])
        #expect(status == 0, "\(server.logText.suffix(2000))")
        let results = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let verbose = try #require(results["verbose_json"] as? [String: Any])
        let words = try #require(verbose["words"] as? [[Any]], "\(verbose)")
        #expect(!words.isEmpty && words.allSatisfy { $0.first as? String == "甲" })
        for word in words {
            let start = try #require(word[1] as? Double), end = try #require(word[2] as? Double)
            #expect(0 <= start && start <= end && end <= 4.2, "\(word)")
        }
    }
}
