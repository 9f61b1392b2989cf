import Foundation
import Synchronization
import Testing
import TingxieAudio
import TingxieCore
@testable import TingxiePipeline
import TingxieText

enum Pinyin {
    static let lexicon: Lexicon? = try? Lexicon()
    static let skipReason: Comment = "needs Debian's unicode-data (Unihan_Readings.txt) and python3-jieba (dict.txt); run `make test`"
}

@Suite(.enabled(if: Pinyin.lexicon != nil, Pinyin.skipReason))
struct HotwordMatcherTests {
    func apply(_ hotwords: [Hotword], to text: String) throws -> (text: String, applications: [HotwordApplication]) {
        HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon)).apply(to: text)
    }

    @Test func readsTonesHeteronymsAndCommonReadingsFromUnihan() throws {
        let dictionary = try #require(Pinyin.lexicon).pinyin
        #expect(dictionary.count > 40_000)
        #expect(Set(dictionary.readings(of: "行")).isSuperset(of: ["xing", "hang"]))
        #expect(dictionary.readings(of: "长").contains("chang"))
        #expect(dictionary.readings(of: "绿").contains("lv"))
        #expect(dictionary.readings(of: "7") == ["qi"])
        #expect(dictionary.toned("绿").first == .init("lv", tone: 4))
        #expect(Set(dictionary.toned("重", commonOnly: true)) == [.init("zhong", tone: 4), .init("chong", tone: 2)])
        // 的 is dì only in 目的: in running text it is de. 月's archaic rù is no reading at all.
        #expect(dictionary.toned("的", commonOnly: true) == [.init("de", tone: 5)])
        #expect(dictionary.toned("的").contains(.init("di", tone: 4)))
        #expect(!dictionary.readings(of: "月").contains("ru"))
    }

    @Test func readsOrdinaryWordsFromJieba() throws {
        let words = try #require(Pinyin.lexicon).words
        #expect(words.count > 50_000)
        #expect(words.contains(Array("预计")))
        #expect(words.contains(Array("6个")))
        #expect(!words.contains(Array("飞奖")))
    }

    @Test(arguments: [
        ("航武技", "寒武纪"),      // han / hang
        ("维州岛", "涠洲岛"),      // identical pinyin
        ("坑棚处理器", "鲲鹏处理器"), // one weak syllable in a long term
        ("美尔平土", "梅尔频谱"),    // pin / ping plus a weak syllable
        ("资付宝", "支付宝"),       // zh / z
        ("飞奖", "飞桨"),          // a two-character term that sounds the same, tones included
    ])
    func confusablePronunciationsAreReplaced(_ heard: String, _ hotword: String) throws {
        let result = try apply([Hotword(hotword)], to: "他说\(heard)很好")
        #expect(result.text == "他说\(hotword)很好")
        #expect(result.applications == [HotwordApplication(hotword: hotword, original: heard, offset: 2, score: result.applications.first?.score ?? 0)])
    }

    @Test func heteronymsAreConsidered() throws {
        // 重 reads zhong and chong.
        #expect(try apply([Hotword("重庆")], to: "我在崇庆工作").text == "我在重庆工作")
    }

    @Test func unrelatedTextIsLeftAlone() throws {
        let hotwords = ["寒武纪", "飞桨", "婺源", "混元大模型", "天玑芯片"].map { Hotword($0) }
        let text = "今天上午九点半我们在三号会议室讨论第二季度的销售计划"
        #expect(try apply(hotwords, to: text).text == text)
        // Two-character terms need every syllable to match at least up to a confusable pair.
        #expect(try apply([Hotword("婺源")], to: "门票五块").text == "门票五块")
        #expect(try apply([Hotword("飞桨")], to: "飞机").text == "飞机")
    }

    @Test func aSpanThatAlreadyIsAHotwordIsNeverRewritten() throws {
        let result = try apply([Hotword("天机"), Hotword("天玑芯片")], to: "天玑芯片很强")
        #expect(result.text == "天玑芯片很强")
        #expect(result.applications.isEmpty)
    }

    @Test func overlappingCandidatesKeepTheBestMatch() throws {
        // 鹏处理器 scores 1 on 棚处理器 (peng = peng), 鲲鹏处理器 0.88 on 坑棚处理器 (kun~keng
        // weak): they overlap, so only the better one is applied.
        let result = try apply([Hotword("鹏处理器"), Hotword("鲲鹏处理器")], to: "坑棚处理器")
        #expect(result.applications.map(\.hotword) == ["鹏处理器"])
        // Apart, both apply.
        #expect(try apply([Hotword("寒武纪"), Hotword("鲲鹏处理器")], to: "航武技和坑棚处理器").text == "寒武纪和鲲鹏处理器")
    }

    @Test func weightSetsTheBar() throws {
        // wei4~wei2 (0.9), zou3~zhou1 (0.7, confusable with another tone), dao4~dao3 (0.9): 0.83,
        // under the bar of 0.85 for three characters; weight 2 lowers it to 0.82.
        #expect(try apply([Hotword("涠洲岛")], to: "去卫走到").text == "去卫走到")
        #expect(try apply([Hotword("涠洲岛", weight: 2)], to: "去卫走到").text == "去涠洲岛")
        // A weight under 1 raises it: 卫走岛 (0.87) passes at weight 1, not at 0.1 (bar 0.877).
        #expect(try apply([Hotword("涠洲岛")], to: "去卫走岛").text == "去涠洲岛")
        #expect(try apply([Hotword("涠洲岛", weight: 0.1)], to: "去卫走岛").text == "去卫走岛")
    }

    @Test func latinAndNumbers() throws {
        #expect(try apply([Hotword("iPhone")], to: "我买了iphone手机").text == "我买了iPhone手机")
        #expect(try apply([Hotword("iPhone")], to: "iphones").text == "iphones")
        #expect(try apply([Hotword("二号线")], to: "地铁2号线停运").text == "地铁二号线停运")
    }

    @Test func digitsReadAsNumbers() throws {
        // Read as yao (phone numbers), 双11期间 would sound close to 摇尾乞怜.
        #expect(try apply([Hotword("摇尾乞怜")], to: "今年双11期间成交额创新高").applications.isEmpty)
        // A digit can still be a misheard syllable: 4 (si) for 燧 (sui).
        #expect(try apply([Hotword("燧原科技")], to: "4元科技在上海").text == "燧原科技在上海")
    }

    @Test func aCharacterTheModelInsertedIsAbsorbed() throws {
        // mei3~mei2 (0.9), er, [的] skipped, 频, tu2~pu3 sharing a final (0.5): 0.85 x 0.95.
        let result = try apply([Hotword("梅尔频谱")], to: "转换成美尔的频图再建模")
        #expect(result.text == "转换成梅尔频谱再建模")
        #expect(result.applications.map(\.original) == ["美尔的频图"])
        #expect(abs((result.applications.first?.score ?? 0) - 0.85 * 0.95) < 0.001)
        // Only inside the term, and never for two-character terms.
        #expect(try apply([Hotword("梅尔频谱")], to: "的美尔频图").applications.map(\.original) == ["美尔频图"])
        #expect(try apply([Hotword("飞桨")], to: "用飞的奖").text == "用飞的奖")
    }

    @Test func ordinaryWordsAreNotRewritten() throws {
        // Each of these sounds exactly like the hotword, but what the model wrote is itself a
        // common word (预计), or a short term would tear a word apart (会议 in 会议室).
        #expect(try apply([Hotword("雨季")], to: "这个项目预计需要半年").applications.isEmpty)
        #expect(try apply([Hotword("议事")], to: "我们在三号会议室讨论").applications.isEmpty)
        #expect(try apply([Hotword("议事")], to: "我们在议室讨论").text == "我们在议事讨论")
        // Two characters must sound the same, tones included: bao4 is not bao1.
        #expect(try apply([Hotword("剥削")], to: "提交报消单据").applications.isEmpty)
        // A reading the character has only in old dictionaries is no evidence (月 as rù).
        #expect(try apply([Hotword("个女弟")], to: "上个月的").applications.isEmpty)
    }

    @Test func spansTheTextStageKeepsAreAskedAbout() throws {
        let matcher = HotwordMatcher(hotwords: [Hotword("岚图"), Hotword("泛微"), Hotword("雨季")], lexicon: try #require(Pinyin.lexicon))
        let text = "他用范围画了蓝图预计明年完工"
        // Alone, the text stage keeps every one: 蓝图 and 预计 are words, 范围 (wei2) is one tone off 泛微 (wei1).
        #expect(matcher.apply(to: text).text == text)
        var asked: [String: Bool] = [:], texts: [String] = []
        let taken = matcher.apply(to: text) { questions in
            for question in questions { asked[question.hotword.text] = question.isWord }
            texts = questions.map(\.replaced)
            return questions.map { $0.hotword.text != "雨季" }
        }
        #expect(asked == ["岚图": false, "泛微": false, "雨季": true])
        #expect(Set(texts) == ["他用泛微画了蓝图预计明年完工", "他用范围画了岚图预计明年完工", "他用范围画了蓝图雨季明年完工"])
        #expect(taken.text == "他用泛微画了岚图预计明年完工")
        #expect(taken.applications.map(\.original) == ["范围", "蓝图"])
        // A span far from every term is never asked about, and no text is asked about more than a few.
        #expect(matcher.apply(to: "今天天气很好") { questions in
            if !questions.isEmpty { Issue.record("asked") }
            return questions.map { _ in true }
        }.text == "今天天气很好")
        let many = HotwordMatcher(hotwords: (0..<8).map { Hotword(["岚图", "兰图", "澜图", "篮图", "拦图", "栏图", "阑图", "谰图"][$0]) },
                                  lexicon: try #require(Pinyin.lexicon))
        var count = 0
        _ = many.apply(to: "蓝图") { questions in count += questions.count; return questions.map { _ in false } }
        #expect(count == HotwordMatcher.maximumConfirmations)
    }

    @Test func aThousandOrdinaryPhrasesLeaveEverydayTextAlone() throws {
        let phrases = try HotwordRecognitionTests.ordinaryPhrases()
        #expect(phrases.count == 1000)
        let text = "请各位同事在本月二十号之前提交报销单据这个项目预计需要六个月总预算大约五百万元"
        #expect(try apply(phrases, to: text).applications.isEmpty)
    }

    /// Says the same text for every piece; records the hotwords its decoder was given.
    final class FixedTextRecognizer: Recognizer {
        let info: ModelInfo
        let text: String
        let spells: @Sendable (Hotword) -> Bool
        let given = Mutex<[Hotword]>([])

        init(_ text: String, biases: Bool, spells: @escaping @Sendable (Hotword) -> Bool = { _ in true }) {
            self.text = text
            self.spells = spells
            info = ModelInfo(family: "fake", name: "fake", emitsTraditional: false, maxSegmentSeconds: 10, biasesHotwords: biases)
        }

        func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
            given.withLock { $0 = hotwords }
            return batch.map { _ in RecognitionResult(text: text) }
        }

        func decodableHotwords(_ hotwords: [Hotword]) -> [Hotword] {
            info.biasesHotwords ? hotwords.filter(spells) : []
        }
    }

    @Test func aBiasedDecoderDecidesAndTheTextStageOnlyConfirms() async throws {
        let hotwords = [Hotword("飞桨"), Hotword("鲲鹏处理器"), Hotword("框架")]
        let matcher = HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon))
        func transcribe(_ recognizer: FixedTextRecognizer) async throws -> Transcript.Segment {
            try await withThreadPool { pool in
                let pipeline = try TranscriptionPipeline(recognizer: recognizer, detectors: FakeVAD(),
                                                         configuration: .init(mergeTargetSeconds: 0), threadPool: pool)
                let transcript = try pipeline.run(source: CountingSource([Float](repeating: 0.1, count: 16_000)), hotwords: matcher,
                                                  canceled: Atomic(false), progress: nil) { _ in }
                return try #require(transcript.segments.first)
            }
        }
        let said = "用飞奖框架和坑棚处理器"
        // A model that takes no hotwords: the text stage rewrites what sounds like one.
        #expect(try await transcribe(FixedTextRecognizer(said, biases: false)).text == "用飞桨框架和鲲鹏处理器")
        // A biased decoder had its chance with every term: its text stands, the terms it
        // produced are reported as the decoder's.
        let biased = FixedTextRecognizer(said, biases: true)
        let segment = try await transcribe(biased)
        #expect(segment.text == said)
        #expect(biased.given.withLock { $0 } == hotwords)
        #expect(segment.hotwords == [HotwordApplication(hotword: "框架", original: "框架", offset: 3, score: 1, stage: .decoder)])
        // A term the decoder cannot spell is still the text stage's.
        let partial = FixedTextRecognizer(said, biases: true) { $0.text != "鲲鹏处理器" }
        #expect(try await transcribe(partial).text == "用飞奖框架和鲲鹏处理器")
        #expect(partial.given.withLock { $0 }.map(\.text) == ["飞桨", "框架"])
    }

    @Test func timesFollowTheReplacedCharacters() {
        let applications = [HotwordApplication(hotword: "梅尔频谱", original: "美尔的频图", offset: 1, score: 0.83),
                            HotwordApplication(hotword: "飞桨", original: "飞奖", offset: 6, score: 0.9)]
        // Before: 把 美 尔 的 频 图 和 飞 奖 at 0...8; after: 把 梅 尔 频 谱 和 飞 桨, the four
        // characters spread over the five they replace.
        let times = HotwordMatcher.retime((0..<9).map(Double.init), applications: applications)
        #expect(times == [0, 1, 2, 4, 5, 6, 7, 8])
    }

    @Test func decoderOccurrencesAreReportedOnceAndNotOverTextReplacements() {
        let replaced = HotwordApplication(hotword: "飞桨", original: "飞奖", offset: 0, score: 0.9)
        let found = HotwordMatcher.decoded([Hotword("飞桨"), Hotword("鲲鹏"), Hotword("鲲鹏处理器")],
                                           in: "飞桨和鲲鹏处理器，鲲鹏", besides: [replaced])
        #expect(found == [
            HotwordApplication(hotword: "鲲鹏处理器", original: "鲲鹏处理器", offset: 3, score: 1, stage: .decoder),
            HotwordApplication(hotword: "鲲鹏", original: "鲲鹏", offset: 9, score: 1, stage: .decoder),
        ])
    }

    @Test func mergingKeepsTheHighestWeightAndCountsTogether() throws {
        let merged = try Hotword.merge([Hotword("飞桨", weight: 2), Hotword("魔搭")], [Hotword("飞桨", weight: 3)])
        #expect(merged == [Hotword("飞桨", weight: 3), Hotword("魔搭")])
        let error = try #require(throws: TingxieError.self) {
            try Hotword.merge((0..<600).map { Hotword("甲\($0)") }, (0..<600).map { Hotword("乙\($0)") })
        }
        #expect(error.message == "1200 hotwords together; at most 1000 are accepted")
    }

    @Test func promptsGiveTermsWithoutWeightsAndNeverFail() throws {
        let prose = "以下是一段关于季度销售会议的录音其中提到了许多产品名称和同事的名字请尽量准确地写出来"
        #expect(prose.count > Hotword.maxLength)
        let terms = Hotword.terms(inPrompt: "ZyntriQix, Digique Plus, CynapseFive. Node.js、鲲鹏处理器；iPhone 15\n\(prose)。#标签，飞桨, 飞桨")
        #expect(terms.map(\.text) == ["ZyntriQix", "Digique Plus", "CynapseFive", "Node.js", "鲲鹏处理器", "iPhone 15", "飞桨"])
        #expect(terms.allSatisfy { $0.weight == 1 })
        // The list form reads back as it was, a term ending in a number included.
        #expect(try Hotword.parse(Hotword.listText(terms), source: "prompt") == terms)
        #expect(Hotword.terms(inPrompt: (0..<1500).map { "词\($0)" }.joined(separator: ",")).count == Hotword.maxCount)
    }

    @Test func parsingAndLimits() throws {
        let parsed = try Hotword.parse("鲲鹏处理器 2\n# comment\n\n飞桨,魔搭社区 1.5，飞桨 3", source: "test")
        #expect(parsed == [Hotword("鲲鹏处理器", weight: 2), Hotword("飞桨", weight: 3), Hotword("魔搭社区", weight: 1.5)])
        #expect(throws: TingxieError.self) { try Hotword.parse("飞桨 50", source: "test") }
        #expect(throws: TingxieError.self) { try Hotword.parse(String(repeating: "长", count: 40), source: "test") }
        let many = (0..<1001).map { "词\($0)" }.joined(separator: "\n")
        let error = try #require(throws: TingxieError.self) { try Hotword.parse(many, source: "big.txt") }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("at most 1000"))
    }
}

/// Hotword recall and false replacements with Whisper base on the corpora.
@Suite(.enabled(if: TestData.realModelsAvailable && Pinyin.lexicon != nil, TestData.skipReason), .serialized)
struct HotwordRecognitionTests {
    /// Fifty terms that the zh-tts sentences do not contain: the hotword corpus's ten and forty more.
    static let unrelated: [Hotword] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/unrelated-hotwords.txt")
        return (try? Hotword.parse(String(contentsOf: file, encoding: .utf8), source: file.path)) ?? []
    }()

    func transcripts(_ corpus: URL, hotwords: [Hotword]) async throws -> [(text: String, reference: String)] {
        let matcher = hotwords.isEmpty ? nil : HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon))
        return try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool)
            var results: [(String, String)] = []
            for (id, reference) in try TestData.transcripts(corpus) {
                let transcript = try await pipeline.transcribe(corpus.appendingPathComponent("\(id).wav"), hotwords: matcher)
                results.append((transcript.text, reference))
            }
            return results
        }
    }

    /// The seeded sample of pypinyin's phrases (scripts/make-phrase-list.py) that stands for a
    /// team's long list: none of them occurs in the corpora's sentences.
    static func ordinaryPhrases() throws -> [Hotword] {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ordinary-phrases.txt")
        return try Hotword.parse(String(contentsOf: file, encoding: .utf8), source: file.path)
    }

    /// Each file's segments as the model wrote them (after Traditional -> Simplified), with its
    /// reference; and the hotword corpus's term per file.
    func segments(_ directory: URL, references corpus: URL) async throws -> [(segments: [String], reference: String)] {
        try await withThreadPool { pool in
            let pipeline = try WhisperRecognitionTests.pipeline(threadPool: pool)
            var results: [([String], String)] = []
            for (id, reference) in try TestData.transcripts(corpus) {
                let transcript = try await pipeline.transcribe(directory.appendingPathComponent("\(id).wav"))
                results.append((transcript.segments.map(\.text), reference))
            }
            return results
        }
    }

    /// White noise at `snr` dB below each file's own power, from a fixed seed.
    func noisyCopies(of corpus: URL, snr: Double, into directory: URL) throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        for (id, _) in try TestData.transcripts(corpus) {
            let samples = try TestData.samples(corpus.appendingPathComponent("\(id).wav"))
            let power = samples.reduce(0) { $0 + Double($1) * Double($1) } / Double(max(1, samples.count))
            let deviation = (power / pow(10, snr / 10)).squareRoot()
            let writer = try WAVWriter(url: directory.appendingPathComponent("\(id).wav"))
            try writer.append(samples.map { sample in
                let gaussian = (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())
                return Float(max(-1, min(1, Double(sample) + gaussian * deviation)))
            })
            try writer.finish()
        }
    }

    /// Applies a list to recognised segments, as the pipeline's text stage does for Whisper
    /// (whose decoder takes no hotwords): CER, hotword recall and every rewrite.
    func score(_ hotwords: [Hotword], _ results: [(segments: [String], reference: String)], terms: [Hotword]? = nil) throws
        -> (cer: Double, recall: Int, rewrites: [String]) {
        let matcher = HotwordMatcher(hotwords: hotwords, lexicon: try #require(Pinyin.lexicon))
        var pairs: [(String, String)] = []
        var rewrites: [String] = []
        var recall = 0
        for result in results {
            let applied = result.segments.map { matcher.apply(to: $0) }
            rewrites += applied.flatMap(\.applications).map { "\($0.original)->\($0.hotword)" }
            let text = applied.map(\.text).joined()
            pairs.append((text, result.reference))
            if let term = terms?.first(where: { result.reference.contains($0.text) }), String(ErrorRate.scoringForm(text)).contains(term.text) {
                recall += 1
            }
        }
        return (ErrorRate.characterErrorRate(pairs), recall, rewrites)
    }

    @Test func longListsOfOrdinaryPhrasesNeitherDamagePlainSpeechNorHideHotwords() async throws {
        let root = try #require(TestData.root)
        let plainCorpus = root.appendingPathComponent("corpus/zh-tts")
        let hotwordCorpus = root.appendingPathComponent("corpus/zh-tts-hotwords")
        let terms = try Hotword.parse(String(contentsOf: hotwordCorpus.appendingPathComponent("hotwords.txt"), encoding: .utf8), source: "hotwords.txt")
        let phrases = try Self.ordinaryPhrases()
        let noisy = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: noisy) }
        try noisyCopies(of: hotwordCorpus, snr: 20, into: noisy)
        let plain = try await segments(plainCorpus, references: plainCorpus)
        let clean = try await segments(hotwordCorpus, references: hotwordCorpus)
        let noisyResults = try await segments(noisy, references: hotwordCorpus)
        let baseline = try score([], plain).cer
        print(String(format: "zh-tts CER without hotwords %.2f%%", baseline * 100))
        for count in [0, 50, 500, 1000] {
            let list = terms + phrases.prefix(count)
            let onPlain = try score(list, plain)
            let onClean = try score(list, clean, terms: terms)
            let onNoisy = try score(list, noisyResults, terms: terms)
            print(String(format: "%d ordinary phrases + 10 hotwords: zh-tts CER %.2f%% (%+.2f points), recall %d/10 clean, %d/10 at 20 dB SNR; rewrites on zh-tts: %@",
                         count, onPlain.cer * 100, (onPlain.cer - baseline) * 100, onClean.recall, onNoisy.recall,
                         onPlain.rewrites.isEmpty ? "none" : onPlain.rewrites.joined(separator: " ")))
            if count >= 500 {
                #expect(onPlain.cer - baseline <= 0.003, "\(count) phrases")
                #expect(onClean.recall >= 9, "\(count) phrases, clean")
                #expect(onNoisy.recall >= 9, "\(count) phrases, 20 dB SNR")
            }
        }
    }

    @Test func hotwordRecallRises() async throws {
        let corpus = try #require(TestData.root).appendingPathComponent("corpus/zh-tts-hotwords")
        let hotwords = try Hotword.parse(String(contentsOf: corpus.appendingPathComponent("hotwords.txt"), encoding: .utf8), source: "hotwords.txt")
        func recall(_ results: [(text: String, reference: String)]) -> Double {
            let hits = results.filter { result in
                let term = hotwords.first { result.reference.contains($0.text) }!.text
                return String(ErrorRate.scoringForm(result.text)).contains(term)
            }.count
            return Double(hits) / Double(results.count)
        }
        let without = recall(try await transcripts(corpus, hotwords: []))
        let with = recall(try await transcripts(corpus, hotwords: hotwords))
        print(String(format: "hotword recall: %.0f%% without, %.0f%% with hotwords", without * 100, with * 100))
        #expect(with >= 0.8)
        #expect(with > without)
    }

    @Test func unrelatedHotwordsBarelyMoveTheCER() async throws {
        let corpus = try #require(TestData.corpus)
        #expect(Self.unrelated.count == 50)
        let plain = try await transcripts(corpus, hotwords: [])
        let biased = try await transcripts(corpus, hotwords: Self.unrelated)
        let before = ErrorRate.characterErrorRate(plain.map { ($0.text, $0.reference) })
        let after = ErrorRate.characterErrorRate(biased.map { ($0.text, $0.reference) })
        let matcher = HotwordMatcher(hotwords: Self.unrelated, lexicon: try #require(Pinyin.lexicon))
        let rounds = 20
        let started = ContinuousClock.now
        for _ in 0..<rounds { for result in plain { _ = matcher.apply(to: result.text) } }
        let perSegment = (ContinuousClock.now - started) / (rounds * plain.count)
        print(String(format: "zh-tts CER %.2f%% without, %.2f%% with 50 unrelated hotwords; matching costs %.0f µs per segment",
                     before * 100, after * 100, perSegment.seconds * 1e6))
        #expect(after - before <= 0.005)
    }
}
