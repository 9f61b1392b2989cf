import Foundation
import Testing
import TingxieCore
import TingxiePipeline
@testable import TingxieServer
@testable import TingxieSherpa
import TingxieText

/// Hotwords in a transducer's beam search, on the generated transducer whose joiner prefers "甲"
/// to "乙" by 0.5 in log-probability whatever the audio (scripts/make-test-models.py).
@Suite(.enabled(if: TestData.generatedModels != nil, "needs TINGXIE_TEST_MODELS from scripts/make-test-models.py; run `make test`"))
struct DecoderHotwordTests {
    static let recognizer: SherpaRecognizer? = TestData.generatedModels.flatMap { models in
        try? SherpaRecognizer(directory: ModelDirectory.detect(models.appendingPathComponent("transducer-tiny")),
                              configuration: .init(threads: 1))
    }

    func decode(_ hotwords: [Hotword]) throws -> String {
        let noise = (0..<16_000).map { index in Float(sin(Double(index) * 0.05) * 0.2) }
        return try #require(Self.recognizer).recognize(batch: [noise], hotwords: hotwords)[0].text
    }

    @Test func transducerIsDetectedAsBiasable() throws {
        let recognizer = try #require(Self.recognizer)
        #expect(recognizer.directory.family == .transducer)
        #expect(recognizer.modelingUnit == "cjkchar")
        #expect(recognizer.info.biasesHotwords)
    }

    @Test func hotwordsReachTheBeamSearchWithTheirWeight() throws {
        #expect(try decode([]) == "甲")
        // Weight 1 gives 1.5 per token, more than the 0.5 that "甲" leads by.
        #expect(try decode([Hotword("乙")]) == "乙")
        // 1.5 x 0.3 = 0.45 is not enough; 1.5 x 0.4 = 0.6 is.
        #expect(try decode([Hotword("乙", weight: 0.3)]) == "甲")
        #expect(try decode([Hotword("乙", weight: 0.4)]) == "乙")
        // A hotword the audio does not favour at all stays out ("丙" trails by 11).
        #expect(try decode([Hotword("丙")]) == "甲")
    }

    @Test func termsTheModelCannotSpellStayOutOfTheDecoder() throws {
        let recognizer = try #require(Self.recognizer)
        #expect(recognizer.decoderContext([Hotword("乙", weight: 2), Hotword("丙丁")]) == "乙 :3.0\n丙丁 :1.5")
        // sherpa-onnx would drop the unknown "戊" and bias towards "乙" alone.
        #expect(recognizer.decoderContext([Hotword("乙戊")]) == nil)
        #expect(try decode([Hotword("乙戊")]) == "甲")
        // Characters sherpa-onnx reads as options or line breaks never reach it.
        for term in ["乙:", "#乙", "@乙", "乙/丙", "NVIDIA"] {
            #expect(recognizer.decoderContext([Hotword(term)]) == nil, "\(term)")
        }
        #expect(try decode([Hotword("#乙"), Hotword(":乙")]) == "甲")
    }

    @Test(.enabled(if: TestData.realModelsAvailable && Pinyin.lexicon != nil, TestData.skipReason))
    func transcriptSaysTheDecoderProducedTheHotword() async throws {
        let recognizer = try #require(Self.recognizer)
        let audio = try #require(TestData.corpus).appendingPathComponent("001.wav")
        let matcher = HotwordMatcher(hotwords: [Hotword("乙")], lexicon: try #require(Pinyin.lexicon))
        let (plain, biased) = try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool, recognizer: recognizer)
            return (try await pipeline.transcribe(audio), try await pipeline.transcribe(audio, hotwords: matcher))
        }
        #expect(!plain.segments.isEmpty)
        #expect(plain.segments.allSatisfy { $0.text == "甲" && $0.hotwords == nil })
        #expect(biased.segments.count == plain.segments.count)
        for segment in biased.segments {
            #expect(segment.text == "乙")
            // The model dates its token in the padding before the audio: never before time 0.
            #expect(segment.timestamps?.allSatisfy { $0 >= 0 } == true)
            #expect(segment.hotwords == [HotwordApplication(hotword: "乙", original: "乙", offset: 0, score: 1, stage: .decoder)])
        }
    }

    @Test(.enabled(if: Pinyin.lexicon != nil, Pinyin.skipReason))
    func serverHotwordsApplyToEveryRequest() async throws {
        let recognizer = try #require(Self.recognizer)
        try await withTestServer(recognizer: recognizer, hotwords: [Hotword("乙")]) { client, _ in
            let system = try await client.get("/v1/system")
            #expect((system.json["hotwords"] as? [String: Any])?["server_terms"] as? Int == 1)
            let models = try await client.get("/v1/models").json["data"] as? [[String: Any]]
            #expect((models?.first?["tingxie"] as? [String: Any])?["hotwords_in_decoder"] as? Bool == true)

            // No hotwords in the request: the server's "乙" still reaches the decoder.
            let id = try #require(try await client.post("/v1/jobs", parts: [.file(Upload.wav())]).json["id"] as? String)
            #expect(try await client.waitUntilFinished(id)["status"] as? String == "succeeded")
            let transcript = try await client.get("/v1/jobs/\(id)/transcript").json
            #expect(transcript["text"] as? String == "乙")
            let applied = ((transcript["segments"] as? [[String: Any]])?.first?["hotwords"] as? [[String: Any]])?.first
            #expect(applied?["hotword"] as? String == "乙")
            #expect(applied?["stage"] as? String == "decoder")

            // The request's terms count together with the server's.
            let many = (0..<1000).map { "词\($0)" }.joined(separator: ",")
            let refused = try await client.post("/v1/jobs", parts: [.file(Upload.wav()), .field("hotwords", many)])
            #expect(refused.status == .badRequest)
            #expect(refused.errorMessage.contains("1001 hotwords together; at most 1000"))
        }
    }

    @Test(.enabled(if: Pinyin.lexicon != nil, Pinyin.skipReason))
    func anOpenAIPromptIsReadForTerms() async throws {
        let recognizer = try #require(Self.recognizer)
        try await withTestServer(recognizer: recognizer) { client, _ in
            // Prose longer than a term is left out instead of failing the request.
            let prompt = "丁，乙。以下是一段关于季度销售会议的录音其中提到了许多产品名称和同事的名字请尽量准确地写出来"
            let response = try await client.post("/v1/audio/transcriptions", parts: [
                .file(Upload.wav()), .field("model", "whisper-1"), .field("prompt", prompt), .field("response_format", "text"),
            ])
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.text.trimmingCharacters(in: .whitespacesAndNewlines) == "乙")
            let plain = try await client.post("/v1/audio/transcriptions", parts: [.file(Upload.wav()), .field("model", "whisper-1"), .field("response_format", "text")])
            #expect(plain.text.trimmingCharacters(in: .whitespacesAndNewlines) == "甲")
        }
    }

    @Test func funASRWeightsAreScaledOntoTingxiesRange() throws {
        #expect(FunASRConfig.hotwordList(#"{"阿里巴巴": 20, "通义": 40, "魔搭": 1000, "达摩院": 1}"#)
            == "达摩院 0.1\n通义 2.0\n阿里巴巴 1.0\n魔搭 10.0")
        #expect(FunASRConfig.hotwordList("阿里巴巴 通义") == "阿里巴巴\n通义")
        #expect(FunASRConfig.hotwordList("阿里巴巴,通义，达摩院") == "阿里巴巴\n通义\n达摩院", "the current client joins a file's words with commas")
        #expect(FunASRConfig.hotwordList("  ") == nil)
    }
}
