import Foundation
import Testing
import TingxieCore
import TingxieSherpa
import TingxieText
import TingxieWhisper

/// Hotwords in Tingxie's Whisper decoder: the tokenizer the prompt is written with, the prompt,
/// and the model's scores of given text with the real whisper-base.
@Suite(.enabled(if: TestData.realModelsAvailable, TestData.skipReason))
struct WhisperHotwordTests {
    static func vocabulary() throws -> WhisperVocabulary {
        let directory = try ModelDirectory.detect(try #require(TestData.whisperBase))
        return try WhisperVocabulary(contentsOf: directory.tokens)
    }

    /// Ids from Whisper's own tokenizer (faster-whisper 1.2.1's tokenizer.json for whisper-base,
    /// read by Hugging Face `tokenizers` 0.23.3).
    @Test(arguments: [
        ("寒武纪", [4510, 240, 38194, 16853, 103]),
        (" 魔搭社区、飞桨", [220, 39485, 22220, 255, 27658, 9937, 118, 1231, 11808, 252, 21416, 101]),
        ("Hello world 123", [15947, 1002, 34466]),
        ("don't  stop\n", [13966, 380, 220, 1590, 198]),
        ("涠洲岛 2024年", [35681, 254, 48706, 23182, 249, 45237, 5157]),
        ("  x", [220, 2031]),
    ] as [(String, [Int64])])
    func encodesAsWhispersTokenizer(_ text: String, _ ids: [Int64]) throws {
        let vocabulary = try Self.vocabulary()
        #expect(vocabulary.encode(text) == ids)
        #expect(vocabulary.text(ids) == text)
    }

    @Test func thePromptListsTheWeightiestTermsThatFit() throws {
        let vocabulary = try Self.vocabulary()
        let directory = try ModelDirectory.detect(try #require(TestData.whisperBase))
        let metadata = try ONNXMetadata.read(try #require(directory.encoder))
        let tokens = try WhisperTokens(metadata: metadata)
        let previous = try #require(tokens.previous)
        let few = tokens.previousText([Hotword("飞桨"), Hotword("寒武纪", weight: 2)], vocabulary: vocabulary)
        #expect(few.first == previous)
        #expect(vocabulary.text(Array(few.dropFirst())) == " 寒武纪、飞桨")
        let many = (0..<200).map { Hotword("术语\($0)号") }
        let long = tokens.previousText(many, vocabulary: vocabulary)
        #expect(long.count <= WhisperTokens.previousLimit)
        let listed = vocabulary.text(Array(long.dropFirst())).dropFirst().split(separator: "、").map(String.init)
        #expect(listed.count >= 5 && listed.count < many.count)
        #expect(listed == many.prefix(listed.count).map(\.text))
        #expect(tokens.previousText([], vocabulary: vocabulary).isEmpty)
    }
}

/// Hotwords with Tingxie's Whisper decoder through the pipeline: the text stage proposes, the
/// decoder weighs what it proposes against the audio.
@Suite(.enabled(if: StepGraph.available && TestData.realModelsAvailable && Pinyin.lexicon != nil, StepGraph.reason), .serialized)
struct WhisperHotwordRecognitionTests {
    static let recognizer: WhisperRecognizer? = StepGraph.folder.flatMap { try? WhisperRecognizer(directory: ModelDirectory.detect($0)) }

    /// Each file's transcript with `hotwords`, and its reference.
    func transcripts(_ directory: URL, references corpus: URL, hotwords: [Hotword], recognizer: (any Recognizer)? = nil)
        async throws -> [(text: String, reference: String)] {
        let matcher = hotwords.isEmpty ? nil : HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon))
        let chosen = try recognizer ?? #require(Self.recognizer as (any Recognizer)?)
        return try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool, recognizer: chosen)
            var results: [(String, String)] = []
            for (id, reference) in try TestData.transcripts(corpus) {
                results.append((try await pipeline.transcribe(directory.appendingPathComponent("\(id).wav"), hotwords: matcher).text, reference))
            }
            return results
        }
    }

    @Test func theSpokenTextIsLikelierThanAnother() throws {
        let recognizer = try #require(Self.recognizer)
        let samples = try TestData.samples(try #require(TestData.corpus).appendingPathComponent("006.wav"))
        let scores = try #require(try recognizer.likelihoods(of: ["华为和小米都在深圳发布了新款平板电脑", "华为和小米都在上海发布了新款手机"],
                                                          in: samples, options: RecognitionOptions()))
        #expect(scores.count == 2)
        #expect(scores[0] > scores[1] + 5)
        #expect(try recognizer.likelihoods(of: ["华为"], in: [], options: RecognitionOptions()) == nil)
    }

    @Test func aListedNameTakesThePlaceOfItsHomophoneWhereTheAudioAllows() async throws {
        let corpus = try #require(TestData.corpus)
        let sentence = corpus.appendingPathComponent("006.wav")  // 华为和小米都在深圳发布了新款平板电脑
        func text(_ hotwords: [Hotword], _ recognizer: (any Recognizer)? = nil) async throws -> String {
            let matcher = HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon))
            let chosen = try recognizer ?? #require(Self.recognizer as (any Recognizer)?)
            return try await withThreadPool { pool in
                try await WhisperRecognitionTests.pipeline(threadPool: pool, recognizer: chosen)
                    .transcribe(sentence, hotwords: matcher).text
            }
        }
        #expect(try await text([]).contains("小米"))
        // 晓米 sounds as 小米 (xiao3 mi3) and is no everyday word: the decoder finds it as likely, within the margin.
        #expect(try await text([Hotword("晓米")]).contains("晓米"))
        // The text stage alone keeps the word (the sherpa-onnx path cannot score text).
        #expect(try await text([Hotword("晓米")], WhisperRecognitionTests.recognizer).contains("小米"))
    }

    /// The public hotword sentences, clean and at 20 dB SNR, with their ten terms and 500
    /// ordinary phrases; and the plain corpus with and without that list.
    @Test func recallWithLongListsAndNoHarmToPlainSpeech() async throws {
        let root = try #require(TestData.root)
        let plain = root.appendingPathComponent("corpus/zh-tts"), hotwordCorpus = root.appendingPathComponent("corpus/zh-tts-hotwords")
        let terms = try Hotword.parse(String(contentsOf: hotwordCorpus.appendingPathComponent("hotwords.txt"), encoding: .utf8), source: "hotwords.txt")
        let list = terms + (try HotwordRecognitionTests.ordinaryPhrases().prefix(500))
        let noisy = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: noisy) }
        try HotwordRecognitionTests().noisyCopies(of: hotwordCorpus, snr: 20, into: noisy)
        func recall(_ results: [(text: String, reference: String)]) -> Int {
            results.filter { result in terms.contains { result.reference.contains($0.text) && String(ErrorRate.scoringForm(result.text)).contains($0.text) } }.count
        }
        let clean = recall(try await transcripts(hotwordCorpus, references: hotwordCorpus, hotwords: list))
        let atNoise = recall(try await transcripts(noisy, references: hotwordCorpus, hotwords: list))
        let before = ErrorRate.characterErrorRate(try await transcripts(plain, references: plain, hotwords: []).map { ($0.text, $0.reference) })
        let after = ErrorRate.characterErrorRate(try await transcripts(plain, references: plain, hotwords: list).map { ($0.text, $0.reference) })
        print(String(format: "Tingxie's Whisper decoder, 10 hotwords + 500 ordinary phrases: recall %d/10 clean, %d/10 at 20 dB SNR; zh-tts CER %.2f%% without the list, %.2f%% with it",
                     clean, atNoise, before * 100, after * 100))
        #expect(clean >= 9)
        #expect(atNoise >= 9)
        #expect(after - before <= 0.003)
        // The harder sentences of scripts/make-hotword-audio.py, where `make bench-hotwords` made them.
        guard let hard = ProcessInfo.processInfo.environment["TINGXIE_HARD_HOTWORDS"].flatMap({ $0.isEmpty ? nil : URL(fileURLWithPath: $0) }) else {
            print("no harder hotword sentences (TINGXIE_HARD_HOTWORDS; `make bench-hotwords` makes them)")
            return
        }
        let hardTerms = try Hotword.parse(String(contentsOf: hard.appendingPathComponent("hotwords.txt"), encoding: .utf8), source: "hotwords.txt")
        for (name, hotwords) in [("alone", hardTerms), ("with 500 ordinary phrases", hardTerms + (try HotwordRecognitionTests.ordinaryPhrases().prefix(500)))] {
            let results = try await transcripts(hard, references: hard, hotwords: hotwords)
            let found = results.filter { result in hardTerms.contains { result.reference.contains($0.text) && String(ErrorRate.scoringForm(result.text)).contains($0.text) } }
            print("harder hotwords \(name): recall \(found.count)/\(results.count), CER \(String(format: "%.2f%%", ErrorRate.characterErrorRate(results.map { ($0.text, $0.reference) }) * 100))")
            #expect(found.count >= 18, "\(name)")  // 18/24 at 43f8953
        }
    }
}
