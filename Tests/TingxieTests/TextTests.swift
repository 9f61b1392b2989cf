import Testing
import TingxieText

@Suite struct TextTests {
    @Test(arguments: [
        ("3999", "三千九百九十九"), ("10", "十"), ("12", "十二"), ("20", "二十"), ("105", "一百零五"),
        ("1005", "一千零五"), ("1050", "一千零五十"), ("10000", "一万"), ("5000000", "五百万"),
        ("300000", "三十万"), ("100010", "十万零一十"), ("120000000", "一亿二千万"), ("0", "零"), ("12.5", "十二点五"),
    ])
    func cardinals(_ number: String, _ spelled: String) {
        #expect(ChineseNumerals.cardinal(number) == spelled)
    }

    @Test func spellsNumbersTheWayTheReferenceDoes() {
        #expect(ChineseNumerals.spellOut("2024年10月1日", matching: "二零二四年十月一日") == "二零二四年十月一日")
        #expect(ChineseNumerals.spellOut("增长12.5%", matching: "增长百分之十二点五") == "增长百分之十二点五")
        #expect(ChineseNumerals.spellOut("售价3,999元", matching: "售价三千九百九十九元") == "售价三千九百九十九元")
        #expect(ChineseNumerals.spellOut("上午9:30", matching: "上午九点半") == "上午九点半")
        #expect(ChineseNumerals.spellOut("3号", matching: "没有数字") == "三号")
    }

    @Test func characterErrorRateIgnoresPunctuationAndSpaces() {
        #expect(ErrorRate.count(hypothesis: "你好， 世界！", reference: "你好世界") == (0, 4))
        #expect(ErrorRate.count(hypothesis: "你好世", reference: "你好世界") == (1, 4))
        #expect(ErrorRate.count(hypothesis: "你坏世界啊", reference: "你好世界") == (2, 4))
        let pooled = ErrorRate.characterErrorRate([("你好", "你好"), ("世", "世界")])
        #expect(abs(pooled - 0.25) < 1e-9)
    }

    @Test func convertsTraditionalToSimplified() throws {
        let converter = try ChineseConverter()
        #expect(converter.convert("會議室裡討論銷售計劃") == "会议室里讨论销售计划")
        #expect(converter.convert("简体不变") == "简体不变")
        let normalizer = try TextNormalizer.forLanguage("zh")
        #expect(normalizer.normalize("  臺灣  ") == "台湾")
        #expect(try TextNormalizer.forLanguage("en").normalize(" Taiwan 臺灣 ") == "Taiwan 臺灣")
    }

    /// Whisper sometimes writes a space where a comma would go; Chinese text has none between
    /// its characters, but keeps those beside Latin words and numbers.
    @Test(arguments: [
        ("今天上午九点半 我们在三号会议室", "今天上午九点半我们在三号会议室"),
        ("好的。 下一个", "好的。下一个"),
        ("用 Swift 写的 3 个服务", "用 Swift 写的 3 个服务"),
        ("OK 好", "OK 好"),
    ])
    func chineseTextHasNoSpacesBetweenItsCharacters(_ text: String, _ normalized: String) throws {
        #expect(try TextNormalizer.forLanguage("zh").normalize(text) == normalized)
    }
}
