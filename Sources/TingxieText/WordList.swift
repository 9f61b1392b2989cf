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
        self.init(jiebaDictionary: data)
    }

    /// Parses jieba's `word count tag` lines, keeping words of two to four characters. Read as
    /// bytes: the file has 349,046 lines, and a server loads it at every start.
    public init(jiebaDictionary data: Data) {
        var words = Set<String>()
        words.reserveCapacity(80_000)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                var space = start
                var characters = 0
                while space < end, bytes[space] != UInt8(ascii: " ") {
                    // Every byte but UTF-8's continuation bytes starts a character.
                    if bytes[space] & 0xC0 != 0x80 { characters += 1 }
                    space += 1
                }
                var count = 0
                var digits = 0
                var index = space + 1
                while index < end, digits < 18, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    count = count * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                    digits += 1
                    index += 1
                }
                if digits > 0, count >= Self.minimumCount, (2...4).contains(characters) {
                    words.insert(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<space]), as: UTF8.self))
                }
                start = end + 1
            }
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
