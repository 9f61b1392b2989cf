import Foundation
import Testing
import TingxieCore
import TingxiePipeline
import TingxieText

enum Pinyin {
    static let dictionary: PinyinDictionary? = try? PinyinDictionary()
}

@Suite(.enabled(if: Pinyin.dictionary != nil, "needs Debian's unicode-data (Unihan_Readings.txt); run `make test`"))
struct HotwordMatcherTests {
    func apply(_ hotwords: [Hotword], to text: String) throws -> (text: String, applications: [HotwordApplication]) {
        HotwordMatcher(hotwords: hotwords, dictionary: try #require(Pinyin.dictionary)).apply(to: text)
    }

    @Test func readsHeteronymsFromUnihan() throws {
        let dictionary = try #require(Pinyin.dictionary)
        #expect(dictionary.count > 40_000)
        #expect(Set(dictionary.readings(of: "行")).isSuperset(of: ["xing", "hang"]))
        #expect(dictionary.readings(of: "长").contains("chang"))
        #expect(dictionary.readings(of: "绿").contains("lv"))
        #expect(dictionary.readings(of: "7") == ["qi"])
    }

    @Test(arguments: [
        ("航武技", "寒武纪"),      // han / hang
        ("维州岛", "涠洲岛"),      // identical pinyin
        ("坑棚处理器", "鲲鹏处理器"), // one weak syllable in a long term
        ("美尔平土", "梅尔频谱"),    // pin / ping plus a weak syllable
        ("资付宝", "支付宝"),       // zh / z
        ("牛奶", "刘奶"),          // n / l
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
        // 鲲鹏处理器 scores 0.88 (kun~keng weak, the rest exact) and 处理机 0.83 (ji~qi): they
        // overlap, so only the better one is applied.
        let result = try apply([Hotword("处理机"), Hotword("鲲鹏处理器")], to: "坑棚处理器")
        #expect(result.text == "鲲鹏处理器")
        #expect(result.applications.map(\.hotword) == ["鲲鹏处理器"])
        // Apart, both apply.
        #expect(try apply([Hotword("处理机"), Hotword("鲲鹏处理器")], to: "坑棚处理器和处理器").text == "鲲鹏处理器和处理机")
    }

    @Test func weightLowersTheBar() throws {
        // wei=wei, zou~zhou (0.8), tao~dao (same final, 0.5): mean 0.77.
        #expect(try apply([Hotword("涠洲岛")], to: "去为走套").text == "去为走套")
        #expect(try apply([Hotword("涠洲岛", weight: 2)], to: "去为走套").text == "去涠洲岛")
    }

    @Test func latinAndNumbers() throws {
        #expect(try apply([Hotword("iPhone")], to: "我买了iphone手机").text == "我买了iPhone手机")
        #expect(try apply([Hotword("iPhone")], to: "iphones").text == "iphones")
        #expect(try apply([Hotword("二号线")], to: "地铁2号线停运").text == "地铁二号线停运")
    }

    @Test func aCharacterTheModelInsertedIsAbsorbed() throws {
        // mei er [de] pin tu: 美~梅, the inserted 的 skipped, tu~pu sharing a final; 0.875 x 0.95.
        let result = try apply([Hotword("梅尔频谱")], to: "转换成美尔的频图再建模")
        #expect(result.text == "转换成梅尔频谱再建模")
        #expect(result.applications == [HotwordApplication(hotword: "梅尔频谱", original: "美尔的频图", offset: 3, score: 0.831)])
        // Only inside the term, and never for two-character terms.
        #expect(try apply([Hotword("梅尔频谱")], to: "的美尔频图").applications.map(\.original) == ["美尔频图"])
        #expect(try apply([Hotword("飞桨")], to: "用飞的奖").text == "用飞的奖")
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
@Suite(.enabled(if: TestData.realModelsAvailable && Pinyin.dictionary != nil, TestData.skipReason), .serialized)
struct HotwordRecognitionTests {
    /// Fifty terms that the zh-tts sentences do not contain: the hotword corpus's ten and forty more.
    static let unrelated: [Hotword] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/unrelated-hotwords.txt")
        return (try? Hotword.parse(String(contentsOf: file, encoding: .utf8), source: file.path)) ?? []
    }()

    func transcripts(_ corpus: URL, hotwords: [Hotword]) async throws -> [(text: String, reference: String)] {
        let matcher = hotwords.isEmpty ? nil : HotwordMatcher(hotwords: hotwords, dictionary: try #require(Pinyin.dictionary))
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
        let matcher = HotwordMatcher(hotwords: Self.unrelated, dictionary: try #require(Pinyin.dictionary))
        let rounds = 20
        let started = ContinuousClock.now
        for _ in 0..<rounds { for result in plain { _ = matcher.apply(to: result.text) } }
        let perSegment = (ContinuousClock.now - started) / (rounds * plain.count)
        print(String(format: "zh-tts CER %.2f%% without, %.2f%% with 50 unrelated hotwords; matching costs %.0f µs per segment",
                     before * 100, after * 100, perSegment.seconds * 1e6))
        #expect(after - before <= 0.005)
    }
}
