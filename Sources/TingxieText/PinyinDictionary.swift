import Foundation
import TingxieCore

/// Mandarin readings of Han characters, with tones and heteronyms, from the Unicode Han database
/// (`Unihan_Readings.txt`, shipped by Debian's `unicode-data`).
///
/// Two sets are kept per character. `readings` are those of modern dictionaries (kMandarin,
/// kTGHZ2013, kXHC1983, kHanyuPinlu), what a hotword may be meant to sound like. `commonReadings`
/// are what the character stands for in running text: where kHanyuPinlu counted its readings in a
/// corpus, those of at least 5% of its uses (的 is `de`, not the `dì` of 目的), else the modern
/// set. Archaic readings (kHanyuPinyin's `rù` for 月) are used only for characters with no other.
public struct PinyinDictionary: Sendable {
    /// One reading: a toneless syllable (`lv` for lǜ) and its tone, 1-4, or 5 for the neutral tone.
    public struct Reading: Hashable, Sendable {
        public var syllable: String
        public var tone: Int

        public init(_ syllable: String, tone: Int) {
            self.syllable = syllable
            self.tone = tone
        }
    }

    private let modern: [Character: [Reading]]
    private let common: [Character: [Reading]]

    /// Where Debian puts the Unihan readings; `TINGXIE_UNIHAN` overrides it.
    public static var defaultLocation: URL {
        if let configured = ProcessInfo.processInfo.environment["TINGXIE_UNIHAN"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        return URL(fileURLWithPath: "/usr/share/unicode/Unihan_Readings.txt.bz2")
    }

    /// Loads the dictionary from `Unihan_Readings.txt` or its `.bz2` (decompressed with `bzip2`).
    /// - Throws: `TingxieError(.fileNotFound)` naming the package to install.
    public init(contentsOf url: URL = PinyinDictionary.defaultLocation) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TingxieError(.fileNotFound, "\(url.path) not found: hotwords need Debian's unicode-data package (scripts/setup installs it)")
        }
        let data: Data
        if url.pathExtension == "bz2" {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bzip2")
            process.arguments = ["-dc", url.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch {
                throw TingxieError(.fileNotFound, "cannot run bzip2 to read \(url.path): \(error.localizedDescription)")
            }
            data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
        } else {
            data = try Data(contentsOf: url)
        }
        self.init(unihanReadings: String(decoding: data, as: UTF8.self))
    }

    /// Parses the text of `Unihan_Readings.txt`.
    public init(unihanReadings text: String) {
        struct Fields {
            var mandarin: [Reading] = []
            var modern: [Reading] = []
            var counted: [(Reading, Int)] = []
            var archaic: [Reading] = []
        }
        var fields: [Character: Fields] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("U+") {
            let parts = line.split(separator: "\t", maxSplits: 2)
            guard parts.count == 3, let scalar = UInt32(parts[0].dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) else { continue }
            let field = parts[1]
            guard ["kMandarin", "kHanyuPinlu", "kTGHZ2013", "kXHC1983", "kHanyuPinyin"].contains(field) else { continue }
            // Values look like `lè`, `zhǎng(1879) cháng(1179)`, `0683.040:lè 1430.060:yuè`, `20811.060:háng,xìng`.
            let values = parts[2].split(whereSeparator: { $0 == " " || $0 == "," }).map { value -> (Reading, Int) in
                let afterColon = value.split(separator: ":").last ?? value
                let pieces = afterColon.split(separator: "(")
                let count = pieces.count > 1 ? Int(pieces[1].dropLast()) ?? 0 : 0
                return (Self.reading(String(pieces.first ?? afterColon)), count)
            }.filter { !$0.0.syllable.isEmpty }
            let character = Character(scalar)
            var entry = fields[character] ?? Fields()
            switch field {
            case "kMandarin": entry.mandarin += values.map(\.0)
            case "kHanyuPinlu": entry.counted += values
            case "kHanyuPinyin": entry.archaic += values.map(\.0)
            default: entry.modern += values.map(\.0)
            }
            fields[character] = entry
        }
        var modern: [Character: [Reading]] = [:]
        var common: [Character: [Reading]] = [:]
        for (character, entry) in fields {
            // kMandarin, the usual reading, stays first.
            var all = Self.unique(entry.mandarin + entry.counted.map(\.0) + entry.modern)
            if all.isEmpty { all = Self.unique(entry.archaic) }
            modern[character] = all
            let total = entry.counted.reduce(0) { $0 + $1.1 }
            common[character] = total > 0
                ? Self.unique(entry.mandarin + entry.counted.filter { $0.1 * 20 >= total }.map(\.0))
                : all
        }
        self.modern = modern
        self.common = common
    }

    /// The toneless readings of a character (`行` -> `xing`, `hang`); digits read as Chinese numerals.
    public func readings(of character: Character) -> [String] {
        var seen = Set<String>()
        return toned(character).map(\.syllable).filter { seen.insert($0).inserted }
    }

    /// The readings of a character with tones: the modern dictionaries' set, or with
    /// `commonOnly` what it stands for in running text.
    public func toned(_ character: Character, commonOnly: Bool = false) -> [Reading] {
        if let digit = character.wholeNumberValue, character.isASCII {
            return Self.digits[digit]
        }
        return (commonOnly ? common : modern)[character] ?? []
    }

    public var count: Int { modern.count }

    /// 1 is yi: its yao in phone numbers would make 双11期间 (yao yao qi jian) sound like 摇尾乞怜.
    private static let digits: [[Reading]] = [
        [.init("ling", tone: 2)], [.init("yi", tone: 1)], [.init("er", tone: 4), .init("liang", tone: 3)],
        [.init("san", tone: 1)], [.init("si", tone: 4)], [.init("wu", tone: 3)], [.init("liu", tone: 4)],
        [.init("qi", tone: 1)], [.init("ba", tone: 1)], [.init("jiu", tone: 3)],
    ]

    private static func unique(_ readings: [Reading]) -> [Reading] {
        var seen = Set<Reading>()
        return readings.filter { seen.insert($0).inserted }
    }

    /// `lǜ` -> `lv` tone 4, `xíng` -> `xing` tone 2, `de` -> `de` tone 5.
    static func reading(_ syllable: String) -> Reading {
        let decomposed = syllable.lowercased().decomposedStringWithCanonicalMapping
        var result = ""
        var tone = 5
        var previous: Unicode.Scalar?
        for scalar in decomposed.unicodeScalars {
            switch scalar {
            case "\u{0304}": tone = 1
            case "\u{0301}": tone = 2
            case "\u{030C}": tone = 3
            case "\u{0300}": tone = 4
            case "\u{0308}" where previous == "u":
                result.removeLast()
                result.append("v")
            default:
                if scalar.isASCII, scalar.properties.isAlphabetic { result.unicodeScalars.append(scalar) }
            }
            previous = scalar
        }
        return Reading(result, tone: tone)
    }
}
