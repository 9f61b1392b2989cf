import Foundation
import TingxieCore

/// Toneless Mandarin readings of Han characters, heteronyms included, from the Unicode Han
/// database (`Unihan_Readings.txt`, shipped by Debian's `unicode-data`).
public struct PinyinDictionary: Sendable {
    private let readings: [Character: [String]]

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

    /// Parses the text of `Unihan_Readings.txt`: `kMandarin` (the common reading) and the
    /// heteronyms of `kHanyuPinlu`, `kXHC1983` and `kHanyuPinyin`.
    public init(unihanReadings text: String) {
        var readings: [Character: [String]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("U+") {
            let fields = line.split(separator: "\t", maxSplits: 2)
            guard fields.count == 3, ["kMandarin", "kHanyuPinlu", "kXHC1983", "kHanyuPinyin"].contains(fields[1]),
                  let scalar = UInt32(fields[0].dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) else { continue }
            // Values look like `lè`, `zhǎng(1879) cháng(1179)`, `0683.040:lè 1430.060:yuè`, `20811.060:háng,xìng`.
            let values = fields[2].split(whereSeparator: { $0 == " " || $0 == "," }).map { value -> Substring in
                let afterColon = value.split(separator: ":").last ?? value
                return afterColon.split(separator: "(").first ?? afterColon
            }
            let character = Character(scalar)
            var list = readings[character] ?? []
            for value in values {
                let syllable = Self.toneless(String(value))
                if !syllable.isEmpty && !list.contains(syllable) { list.append(syllable) }
            }
            // kMandarin comes first in the file: the common reading stays first.
            readings[character] = list
        }
        self.readings = readings
    }

    /// The toneless readings of a character (`行` -> `xing`, `hang`); digits read as Chinese numerals.
    public func readings(of character: Character) -> [String] {
        if let digit = character.wholeNumberValue, character.isASCII {
            return [["ling"], ["yi", "yao"], ["er", "liang"], ["san"], ["si"], ["wu"], ["liu"], ["qi"], ["ba"], ["jiu"]][digit]
        }
        return readings[character] ?? []
    }

    public var count: Int { readings.count }

    /// `lǜ` -> `lv`, `xíng` -> `xing`.
    static func toneless(_ syllable: String) -> String {
        let decomposed = syllable.lowercased().decomposedStringWithCanonicalMapping
        var result = ""
        var previous: Unicode.Scalar?
        for scalar in decomposed.unicodeScalars {
            if scalar == "\u{0308}", previous == "u" {
                result.removeLast()
                result.append("v")
            } else if scalar.properties.generalCategory != .nonspacingMark, scalar.isASCII, scalar.properties.isAlphabetic {
                result.unicodeScalars.append(scalar)
            }
            previous = scalar
        }
        return result
    }
}
