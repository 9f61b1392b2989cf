import Foundation
import Hummingbird
import Synchronization
import HummingbirdTesting
import Testing
import TingxieCore
import TingxieSherpa

/// `--streaming-model-dir`: sherpa-onnx's online recogniser gives live text while a sentence is
/// spoken, the offline model the sentence. The streaming model is the generated one
/// (scripts/make-test-models.py), which says one "乙" for about every 0.6 s of audio.
@Suite(.enabled(if: TestData.generatedModels != nil, "needs TINGXIE_TEST_MODELS from scripts/make-test-models.py; run `make test`"))
struct StreamingModelTests {
    static var tiny: URL { TestData.generatedModels!.appendingPathComponent("paraformer-streaming-tiny") }

    /// `seconds` of a 300 Hz tone at 16 kHz: speech to the generated model.
    static func tone(seconds: Double) -> [Float] {
        WAVFixture.sine(frequency: 300, seconds: seconds, sampleRate: 16_000, amplitude: 0.3).map(Float.init)
    }

    @Test func theStreamingParaformerDecodesAsAudioArrives() throws {
        let directory = try StreamingModelDirectory.detect(Self.tiny)
        #expect(directory.family == .paraformer && directory.joiner == nil)
        let recognizer = try SherpaStreamingRecognizer(directory: directory)
        #expect(recognizer.name == "paraformer-streaming-tiny")
        let stream = try recognizer.makeStream()
        let tone = Self.tone(seconds: 3)
        var texts: [String] = []
        for start in stride(from: 0, to: tone.count, by: 1600) {
            stream.accept(Array(tone[start..<min(tone.count, start + 1600)]))
            texts.append(stream.decode())
        }
        // Text arrives while audio does, and only grows.
        #expect(texts.first == "", "nothing before the first 0.6 s chunk")
        let final = try #require(texts.last)
        #expect(final.count >= 3 && final.allSatisfy { $0 == "乙" }, "\(texts)")
        #expect(zip(texts, texts.dropFirst()).allSatisfy { $1.hasPrefix($0) }, "\(texts)")
        #expect(texts.firstIndex { !$0.isEmpty }! < texts.count / 2, "\(texts)")
        // A new sentence starts empty.
        stream.reset()
        #expect(stream.decode() == "")
        stream.accept(Array(tone.prefix(16_000)))
        #expect(stream.decode().hasPrefix("乙"))
    }

    /// Streams of one recogniser decode on different threads at once (as live connections do)
    /// and each gets what it would alone.
    @Test func streamsDecodeConcurrently() throws {
        let recognizer = try SherpaStreamingRecognizer(directory: try StreamingModelDirectory.detect(Self.tiny))
        let seconds = [1.3, 2.5, 3.7, 4.9]
        @Sendable func decode(_ seconds: Double) throws -> String {
            let stream = try recognizer.makeStream()
            let tone = Self.tone(seconds: seconds)
            for start in stride(from: 0, to: tone.count, by: 800) {
                stream.accept(Array(tone[start..<min(tone.count, start + 800)]))
                _ = stream.decode()
            }
            return stream.decode()
        }
        let alone = try seconds.map(decode)
        let together = Mutex([String](repeating: "", count: seconds.count))
        DispatchQueue.concurrentPerform(iterations: seconds.count * 4) { index in
            let text = (try? decode(seconds[index % seconds.count])) ?? "failed"
            if index >= seconds.count * 3 { together.withLock { $0[index % seconds.count] = text } }
        }
        #expect(together.withLock { $0 } == alone)
        #expect(Set(alone).count == seconds.count, "longer audio, more text: \(alone)")
    }

    @Test func aBrokenOrOfflineFolderIsAnErrorNotAnExit() throws {
        let models = try #require(TestData.generatedModels)
        func refusal(_ name: String) throws -> TingxieError {
            try #require(throws: TingxieError.self) { try StreamingModelDirectory.detect(models.appendingPathComponent(name)) }
        }
        let bare = try refusal("paraformer-streaming-no-metadata")
        #expect(bare.code == .invalidModel)
        #expect(bare.message.contains("encoder.onnx is a streaming Paraformer model without the metadata sherpa-onnx needs: missing vocab_size, lfr_window_size"))
        #expect(try refusal("paraformer-tiny").message.contains("this is an offline model (model.onnx); give it as --model-dir"))
        // The generated transducer is an offline zipformer2: it lacks a streaming encoder's metadata.
        #expect(try refusal("transducer-tiny").message.contains("encoder.onnx is a streaming zipformer2 model without the metadata sherpa-onnx needs: missing encoder_dims"))
        #expect(try refusal("nonexistent").code == .modelNotFound)
    }

    /// In the server the streaming model's text is what the partials carry, and the offline
    /// model's the sentence; `/v1/system` says where live text comes from.
    @Test(arguments: ["2pass", "online"])
    func partialsComeFromTheStreamingModelAndSentencesFromTheOfflineOne(mode: String) async throws {
        let streaming = try SherpaStreamingRecognizer(directory: try StreamingModelDirectory.detect(Self.tiny))
        try await withTestServer(recognizer: PrefixRecognizer(), streaming: streaming, testing: .live) { client, _ in
            let system = try await client.get("/v1/system").json
            let live = try #require(system["live"] as? [String: Any])
            #expect(live["source"] as? String == "streaming model" && live["streaming_model"] as? String == "paraformer-streaming-tiny")
            #expect(live["partial_interval_s"] == nil)

            let audio = StreamClient.pcm(seconds: 5, bursts: [(0.2, 4.2)])
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "\#(mode)", "wav_name": "mic", "is_speaking": true}"#), audio: audio, pace: .milliseconds(25))
            let results = Array(messages.dropLast())
            let partials = results.filter { $0["start_time"] == nil }
            #expect(partials.count >= 3, "\(messages)")
            let shown = partials.compactMap { $0["text"] as? String }.joined()
            #expect(shown.count >= 3 && shown.allSatisfy { $0 == "乙" }, "\(messages)")
            let final = try #require(results.last)
            #expect(final["start_time"] != nil)
            // The sentence is the offline model's; an online client is sent all of it, as the
            // partials were not a prefix of it.
            #expect(final["text"] as? String == PrefixRecognizer.sentence, "\(messages)")
        }
    }

    /// `tingxie serve --streaming-model-dir` with the real VAD: a corpus sentence streamed in
    /// 2pass gets the streaming model's partials before the offline model's sentence. A broken
    /// folder stops the start with a message.
    @Test(.enabled(if: TestData.vadModel != nil && TestData.corpus != nil, "needs the VAD model and the corpus; run `make test`"))
    func serveTakesAStreamingModelAndRefusesABrokenOne() async throws {
        let models = try #require(TestData.generatedModels)
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let offline = models.appendingPathComponent("paraformer-tiny")
        let broken = try await CLI.run(["serve", "--model-dir", offline.path, "--data-dir", root.appendingPathComponent("bad").path, "--port", "0",
                                        "--streaming-model-dir", models.appendingPathComponent("paraformer-streaming-no-metadata").path], timeout: 60)
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("missing vocab_size"), "\(broken.stderr)")

        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: offline,
                                             arguments: ["--streaming-model-dir", Self.tiny.path])
        defer { server.stop() }
        let speech = try TestData.samples(try #require(TestData.corpus).appendingPathComponent("001.wav"))
        let pcm = StreamClient.pcm(speech + [Float](repeating: 0, count: 16_000))
        let messages = try await StreamClient(port: server.port).converse(
            first: .text(#"{"mode": "2pass", "wav_name": "corpus", "is_speaking": true}"#), audio: pcm, pace: .milliseconds(25))
        let online = messages.filter { $0["mode"] as? String == "2pass-online" }.compactMap { $0["text"] as? String }
        let sentences = messages.filter { $0["mode"] as? String == "2pass-offline" && $0["start_time"] != nil }.compactMap { $0["text"] as? String }
        #expect(!online.isEmpty && online.joined().allSatisfy { $0 == "乙" }, "\(messages)")
        // paraformer-tiny says 好 for every frame (and punctuates nothing).
        #expect(!sentences.isEmpty && sentences.allSatisfy { $0.hasPrefix("好") }, "\(messages)")
        let first = try #require(messages.firstIndex { $0["mode"] as? String == "2pass-online" })
        #expect(first < messages.firstIndex { $0["mode"] as? String == "2pass-offline" } ?? 0, "a partial before the first sentence")
    }

    /// `tingxie models pull paraformer-zh-streaming` (from a loopback mirror, with a catalog
    /// file) installs and checks a streaming model, and `serve` then uses it without being told.
    @Test(.enabled(if: TestData.vadModel != nil, "needs the VAD model; run `make test`"))
    func aPulledStreamingModelIsUsedByDefault() async throws {
        let models = try #require(TestData.generatedModels)
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let release = "sherpa-onnx-streaming-paraformer-bilingual-zh-en"
        try FileManager.default.copyItem(at: Self.tiny, to: root.appendingPathComponent(release))
        let archive = root.appendingPathComponent("model.tar.bz2")
        _ = try await CLI.run(executable: URL(fileURLWithPath: "/bin/tar"), ["-cjf", archive.path, "-C", root.path, release])
        let hub = ModelHub(archive: try Data(contentsOf: archive))
        try await Application(router: hub.router()).test(.live) { client in
            let catalog = root.appendingPathComponent("catalog.json")
            try Data("""
                {"default": "paraformer-zh-streaming", "models": [{"name": "paraformer-zh-streaming", "description": "streaming",
                 "family": "paraformer-streaming", "languages": ["zh", "en"], "archive": "model.tar.bz2", "folder": "\(release)",
                 "urls": ["http://127.0.0.1:\(client.port!)/good/model.tar.bz2"]}]}
                """.utf8).write(to: catalog)
            let installed = root.appendingPathComponent("models")
            let pull = try await CLI.run(["models", "pull", "paraformer-zh-streaming", "--catalog", catalog.path, "--models-dir", installed.path])
            #expect(pull.status == 0, "\(pull.stderr)")
            let folder = installed.appendingPathComponent("paraformer-zh-streaming")
            let verify = try await CLI.run(["models", "verify", folder.path])
            #expect(verify.stdout.contains("paraformer-streaming model"), "\(verify.stdout) \(verify.stderr)")

            let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: models.appendingPathComponent("paraformer-tiny"),
                                                 arguments: ["--vad-model", try #require(TestData.vadModel).path],
                                                 environment: ["TINGXIE_MODELS_DIR": installed.path])
            defer { server.stop() }
            let system = try await LiveHTTP.request(server.baseURL + "/v1/system").json
            let live = try #require(system["live"] as? [String: Any])
            #expect(live["streaming_model"] as? String == "paraformer-zh-streaming", "\(system)")
        }
    }
}
