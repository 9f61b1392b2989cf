import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TingxieCore
@testable import TingxiePipeline
@testable import TingxieSherpa

/// A punctuator that puts a mark after every `every` characters, or answers `replacement`.
struct EveryNthPunctuator: Punctuator {
    var name = "every-nth"
    var every = 2
    var replacement: String?

    func punctuate(_ text: String) -> String {
        if let replacement { return replacement }
        var result = ""
        for (index, character) in text.enumerated() {
            result.append(character)
            if (index + 1) % every == 0, index + 1 < text.count { result.append("，") }
        }
        return result + "。"
    }
}

/// Punctuation for models whose text has none: the CT-Transformer through sherpa-onnx, and the
/// stage that puts it around hotwords.
struct PunctuationTests {
    @Test func marksGoBetweenHotwordsAndOffsetsFollow() {
        let hotword = HotwordApplication(hotword: "鲲鹏处理器", original: "昆明处理器", offset: 2, score: 0.9)
        let (text, applications) = PunctuationStage.apply(EveryNthPunctuator(), to: "今天鲲鹏处理器很好", applications: [hotword])
        // The punctuator wrote 今天，鲲鹏，处理，器很，好。: the marks inside the hotword go.
        #expect(text == "今天，鲲鹏处理器很，好。")
        #expect(applications.map(\.offset) == [3])
        #expect(Array(text)[3..<8].map(String.init).joined() == "鲲鹏处理器")
    }

    @Test func spacesMayGoAndOtherChangesAreRefused() {
        let spaced = PunctuationStage.apply(EveryNthPunctuator(replacement: "hello，world。"), to: "hello world", applications: [])
        #expect(spaced.text == "hello，world。")
        let rewritten = PunctuationStage.apply(EveryNthPunctuator(replacement: "完全不同。"), to: "今天很好", applications: [])
        #expect(rewritten.text == "今天很好")
    }

    @Test(.enabled(if: TestData.generatedModels != nil, "needs TINGXIE_TEST_MODELS from scripts/make-test-models.py; run `make test`"))
    func theGeneratedCTTransformerPunctuatesThroughSherpaOnnx() throws {
        let models = try #require(TestData.generatedModels)
        let punctuation = try SherpaPunctuation(folder: models.appendingPathComponent("punctuation-tiny"))
        #expect(punctuation.name == "punctuation-tiny")
        // Its table: 天 -> ，, 了 -> 。, 吗 -> ？, world -> 。; sherpa-onnx ends every text with a mark.
        #expect(punctuation.punctuate("今天是好了吗") == "今天，是好了。吗？")
        #expect(punctuation.punctuate("hello world") == "hello world。")
        #expect(punctuation.punctuate("") == "")
    }

    @Test(.enabled(if: TestData.generatedModels != nil, "needs TINGXIE_TEST_MODELS from scripts/make-test-models.py; run `make test`"))
    func aBrokenPunctuationModelIsAnErrorNotAnExit() throws {
        let models = try #require(TestData.generatedModels)
        let missing = try #require(throws: TingxieError.self) {
            try SherpaPunctuation(folder: models.appendingPathComponent("punctuation-no-metadata"))
        }
        #expect(missing.code == .invalidModel)
        #expect(missing.message.contains("its metadata lacks tokens, vocab_size, punctuations, unk_symbol"))
        let recogniser = try #require(throws: TingxieError.self) {
            try SherpaPunctuation(folder: models.appendingPathComponent("transducer-tiny"))
        }
        #expect(recogniser.message.contains("no model.onnx or model.int8.onnx"))
        let paraformer = try #require(throws: TingxieError.self) {
            try SherpaPunctuation(folder: models.appendingPathComponent("paraformer-tiny"))
        }
        #expect(paraformer.message.contains("is not a CT-Transformer punctuation model"))
    }

    /// The server says whether punctuation is on and why, and FunASR's offline answer carries
    /// each sentence's mark in `stamp_sents` as FunASR's own server does.
    @Test func theServerReportsPunctuationAndFunASRSeesTheMarks() async throws {
        try await withTestServer { client, _ in
            let system = try await client.execute(uri: "/v1/system", method: .get) { try JSONSerialization.jsonObject(with: Data(buffer: $0.body)) }
            let punctuation = try #require((system as? [String: Any])?["punctuation"] as? [String: Any])
            #expect(punctuation["active"] as? Bool == false)
            #expect((punctuation["reason"] as? String)?.contains("tingxie models pull punctuation-zh-en") == true)
            let live = try #require((system as? [String: Any])?["live"] as? [String: Any])
            #expect(live["partials"] as? Bool == true && live["partial_interval_s"] as? Double == 0.6)
        }
        try await withTestServer(punctuator: EveryNthPunctuator(every: 1000), testing: .live) { client, _ in
            let system = try await client.execute(uri: "/v1/system", method: .get) { try JSONSerialization.jsonObject(with: Data(buffer: $0.body)) }
            let punctuation = try #require((system as? [String: Any])?["punctuation"] as? [String: Any])
            #expect(punctuation["active"] as? Bool == true)
            #expect(punctuation["model"] as? String == "every-nth")
            let audio = StreamClient.pcm(seconds: 3, bursts: [(0.3, 1.0), (1.6, 2.4)])
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "offline", "wav_name": "meeting", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": true}"#),
                audio: audio)
            let message = try #require(messages.first)
            #expect((message["text"] as? String)?.hasSuffix("。") == true)
            let sentences = try #require(message["stamp_sents"] as? [[String: Any]])
            #expect(sentences.count == 2)
            #expect(sentences.allSatisfy { $0["punc"] as? String == "。" && !($0["text_seg"] as? String ?? "。").contains("。") })
        }
    }
}
