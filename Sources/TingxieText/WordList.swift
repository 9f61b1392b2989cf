import Foundation
import TingxieCore

/// Words in ordinary use, from jieba's dictionary (`dict.txt`, shipped by Debian's python3-jieba):
/// a span of recognised text that is such a word is a plausible reading of the speech, so the
/// hotword stage leaves it alone.
public struct WordList: Sendable {
    private let words: Set<String>

    /// Words counted fewer times than this in jieba's corpus are too rare to be evidence.
    public static let minimumCount = 20

    /// Where Debian puts jieba's dictionary; `TINGXIE_WORDS` overrides it.
    public static var defaultLocation: URL {
        if let configured = ProcessInfo.processInfo.environment["TINGXIE_WORDS"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        return URL(fileURLWithPath: "/usr/lib/python3/dist-packages/jieba/dict.txt")
    }

    /// - Throws: `TingxieError(.fileNotFound)` naming the package to install.
    public init(contentsOf url: URL = WordList.defaultLocation) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TingxieError(.fileNotFound, "\(url.path) not found: hotwords need Debian's python3-jieba package (scripts/setup installs it)")
        }
        self.init(jiebaDictionary: String(decoding: data, as: UTF8.self))
    }

    /// Parses jieba's `word count tag` lines, keeping words of two to four characters.
    public init(jiebaDictionary text: String) {
        var words = Set<String>()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let count = Int(fields[1]), count >= Self.minimumCount,
                  (2...4).contains(fields[0].count) else { continue }
            words.insert(String(fields[0]))
        }
        self.words = words
    }

    /// Whether `characters` are a word in ordinary use; Arabic digits count as Chinese numerals (6个 is 六个).
    public func contains(_ characters: some Collection<Character>) -> Bool {
        words.contains(String(characters.map { character in
            guard character.isASCII, let digit = character.wholeNumberValue else { return character }
            return Array("零一二三四五六七八九")[digit]
        }))
    }

    public var count: Int { words.count }
}

/// What hotword matching reads: how characters sound and which words are ordinary.
public struct Lexicon: Sendable {
    public let pinyin: PinyinDictionary
    public let words: WordList

    public init(pinyin: PinyinDictionary, words: WordList) {
        self.pinyin = pinyin
        self.words = words
    }

    /// Loads both from their default locations.
    /// - Throws: `TingxieError(.fileNotFound)` naming the Debian package that is missing.
    public init() throws {
        self.init(pinyin: try PinyinDictionary(), words: try WordList())
    }
}
