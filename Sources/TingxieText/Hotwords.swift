import Foundation
import TingxieCore

/// Model-agnostic biasing: finds spans of recognised text whose Mandarin pronunciation is close to
/// a hotword's and replaces them when the match is strong enough.
///
/// Pronunciations are compared as toneless pinyin, all readings of heteronyms considered, with the
/// usual confusable pairs (zh/z, ch/c, sh/s, n/l, f/h, an/ang, en/eng, in/ing) counting as near
/// misses. Latin hotwords are matched case-insensitively and fixed in case.
public struct HotwordMatcher: Sendable {
    private struct Entry: Sendable {
        var hotword: Hotword
        var characters: [Character]
        var readings: [[Syllable]]
        var isLatin: Bool
    }

    /// A reading split once into what the comparison needs.
    struct Syllable: Sendable, Equatable {
        var full: String
        var initial: String
        var fuzzyInitial: String
        var fuzzyFinal: String

        init(_ syllable: String) {
            full = syllable
            let (initial, final) = HotwordMatcher.split(syllable)
            self.initial = initial
            fuzzyInitial = HotwordMatcher.fuzzyInitial(initial)
            fuzzyFinal = HotwordMatcher.fuzzyFinal(final)
        }
    }

    /// The terms as given, including any the text stage cannot pronounce (a biased decoder
    /// may still use them).
    public let hotwords: [Hotword]
    private let entries: [Entry]
    private let dictionary: PinyinDictionary

    /// Scores at or above this replace a span, for a hotword of weight 1 and 3 or more characters.
    public static let threshold = 0.8
    /// Two-character hotwords have little evidence to go on: every syllable must match.
    public static let shortThreshold = 0.88
    /// Factor on the score of a span with one character more than the hotword.
    public static let insertionPenalty = 0.95

    public init(hotwords: [Hotword], dictionary: PinyinDictionary) {
        self.hotwords = hotwords
        self.dictionary = dictionary
        entries = hotwords.compactMap { hotword in
            let characters = Array(hotword.text)
            guard !characters.isEmpty else { return nil }
            let isLatin = characters.allSatisfy { $0.isASCII }
            let readings = characters.map { dictionary.readings(of: $0).map(Syllable.init) }
            // A term with characters we cannot pronounce can only be matched literally (Latin).
            guard isLatin || readings.allSatisfy({ !$0.isEmpty }) else { return nil }
            return Entry(hotword: hotword, characters: characters, readings: readings, isLatin: isLatin)
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Returns `text` with hotwords applied, and where they were applied.
    public func apply(to text: String) -> (text: String, applications: [HotwordApplication]) {
        let characters = Array(text)
        var parsed: [Character: [Syllable]] = [:]
        let readings = characters.map { character in
            if let known = parsed[character] { return known }
            let syllables = dictionary.readings(of: character).map(Syllable.init)
            parsed[character] = syllables
            return syllables
        }
        var candidates: [(start: Int, length: Int, entry: Entry, score: Double)] = []
        for entry in entries {
            let length = entry.characters.count
            guard length <= characters.count else { continue }
            // Spans overlap, so each (hotword character, text character) pair is compared once.
            var memo = [Double](repeating: -1, count: length * characters.count)
            func similarity(_ offset: Int, _ position: Int) -> Double {
                let slot = offset * characters.count + position
                if memo[slot] < 0 { memo[slot] = Self.similarity(entry, offset, characters[position], readings[position]) }
                return memo[slot]
            }
            for start in 0...(characters.count - length) {
                let span = characters[start..<(start + length)]
                if entry.isLatin {
                    if String(span).lowercased() == entry.hotword.text.lowercased(), Array(span) != entry.characters,
                       isWordBoundary(characters, start, length) {
                        candidates.append((start, length, entry, 1))
                    }
                    continue
                }
                guard Array(span) != entry.characters else {
                    // Already right: claim the span so that no other hotword rewrites it.
                    candidates.append((start, length, entry, 2))
                    continue
                }
                if let score = Self.score(length, from: start, skipping: nil, similarity), score >= required(entry) {
                    candidates.append((start, length, entry, score))
                }
            }
            // ASR often inserts a character into a name (a particle such as 的): for terms of
            // three or more characters, a span one longer whose other characters match, with a
            // penalty, also counts.
            guard !entry.isLatin, length >= 3, length + 1 <= characters.count else { continue }
            for start in 0...(characters.count - length - 1) {
                for inserted in (start + 1)..<(start + length) {
                    if let score = Self.score(length, from: start, skipping: inserted, similarity).map({ $0 * Self.insertionPenalty }),
                       score >= required(entry) {
                        candidates.append((start, length + 1, entry, score))
                    }
                }
            }
        }
        // Best first, longer first on ties; overlapping weaker candidates are dropped.
        candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.length > $1.length }
        var taken = [Bool](repeating: false, count: characters.count)
        var chosen: [(start: Int, length: Int, entry: Entry, score: Double)] = []
        for candidate in candidates where !taken[candidate.start..<(candidate.start + candidate.length)].contains(true) {
            for index in candidate.start..<(candidate.start + candidate.length) { taken[index] = true }
            if candidate.score <= 1 { chosen.append(candidate) }
        }
        guard !chosen.isEmpty else { return (text, []) }
        chosen.sort { $0.start < $1.start }
        var output: [Character] = []
        var applications: [HotwordApplication] = []
        var position = 0
        for candidate in chosen {
            output += characters[position..<candidate.start]
            applications.append(HotwordApplication(
                hotword: candidate.entry.hotword.text,
                original: String(characters[candidate.start..<(candidate.start + candidate.length)]),
                offset: output.count,
                score: (candidate.score * 1000).rounded() / 1000))
            output += candidate.entry.characters
            position = candidate.start + candidate.length
        }
        output += characters[position...]
        return (String(output), applications)
    }

    /// Times of the characters of a text after `applications` (from `apply`), given the times
    /// of the characters before: a hotword's characters take the times of the ones they
    /// replaced, spread evenly over them where the model had inserted one.
    public static func retime(_ times: [Double], applications: [HotwordApplication]) -> [Double] {
        var output: [Double] = []
        var position = 0
        for application in applications.sorted(by: { $0.offset < $1.offset }) {
            let start = position + application.offset - output.count
            let replaced = application.original.count
            guard start >= position, start + replaced <= times.count, replaced > 0 else { return times }
            output += times[position..<start]
            let count = application.hotword.count
            output += (0..<count).map { index in
                times[start + (count > 1 ? Int((Double(index * (replaced - 1)) / Double(count - 1)).rounded()) : 0)]
            }
            position = start + replaced
        }
        return output + times[position...]
    }

    /// Where a biased decoder produced hotwords: their occurrences in `text` outside the spans
    /// the text stage replaced.
    public static func decoded(_ hotwords: [Hotword], in text: String, besides applications: [HotwordApplication]) -> [HotwordApplication] {
        let characters = Array(text)
        var taken = [Bool](repeating: false, count: characters.count)
        for application in applications {
            let end = min(characters.count, application.offset + application.hotword.count)
            for index in application.offset..<max(application.offset, end) { taken[index] = true }
        }
        var found: [HotwordApplication] = []
        // Longer terms first, so that a term inside a longer one is not reported twice.
        for hotword in hotwords.sorted(by: { $0.text.count > $1.text.count }) {
            let term = Array(hotword.text)
            guard !term.isEmpty, term.count <= characters.count else { continue }
            for start in 0...(characters.count - term.count)
            where characters[start..<(start + term.count)].elementsEqual(term) && !taken[start..<(start + term.count)].contains(true) {
                for index in start..<(start + term.count) { taken[index] = true }
                found.append(HotwordApplication(hotword: hotword.text, original: hotword.text, offset: start, score: 1, stage: .decoder))
            }
        }
        return found.sorted { $0.offset < $1.offset }
    }

    private func required(_ entry: Entry) -> Double {
        let base = entry.characters.count <= 2 ? Self.shortThreshold : Self.threshold
        // Each unit of weight above 1 lowers the bar a little, never below 0.65.
        return max(0.65, base - 0.05 * (entry.hotword.weight - 1))
    }

    /// Mean similarity of a hotword's `length` characters to the text's from `start` on, the
    /// character at `skipping` left out; `nil` when any position is hopeless.
    private static func score(_ length: Int, from start: Int, skipping inserted: Int?, _ similarity: (Int, Int) -> Double) -> Double? {
        var total = 0.0
        var weak = 0
        for offset in 0..<length {
            let position = start + offset
            let value = similarity(offset, inserted.map { position >= $0 ? position + 1 : position } ?? position)
            if value < 0.75 { weak += 1 }
            // One weakly matching syllable is tolerated in longer terms, none in short ones.
            if value < 0.4 || (weak > 0 && length <= 2) || weak > 1 { return nil }
            total += value
        }
        return total / Double(length)
    }

    /// How close `character` (read as `spoken`) sounds to the hotword's character at `offset`:
    /// 1 for the same character, the best syllable similarity over both sets of readings else.
    private static func similarity(_ entry: Entry, _ offset: Int, _ character: Character, _ spoken: [Syllable]) -> Double {
        if character == entry.characters[offset] { return 1 }
        var best = 0.0
        for a in spoken { for b in entry.readings[offset] { best = max(best, similarity(a, b)) } }
        return best
    }

    private func isWordBoundary(_ characters: [Character], _ start: Int, _ length: Int) -> Bool {
        func isWordCharacter(_ index: Int) -> Bool {
            characters.indices.contains(index) && characters[index].isASCII && (characters[index].isLetter || characters[index].isNumber)
        }
        return !isWordCharacter(start - 1) && !isWordCharacter(start + length)
    }

    /// Similarity of two toneless syllables: 1 equal, 0.8 equal up to confusable pairs, 0.5 the
    /// same final, 0.4 the same initial, 0 otherwise.
    static func similarity(_ a: Syllable, _ b: Syllable) -> Double {
        if a.full == b.full { return 1 }
        let sameFinal = a.fuzzyFinal == b.fuzzyFinal
        let sameInitial = a.fuzzyInitial == b.fuzzyInitial
        if sameInitial && sameFinal { return 0.8 }
        if sameFinal { return 0.5 }
        if sameInitial && !a.initial.isEmpty { return 0.4 }
        return 0
    }

    private static let initials = ["zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
                                   "j", "q", "x", "r", "z", "c", "s", "y", "w"]

    static func split(_ syllable: String) -> (initial: String, final: String) {
        for initial in initials where syllable.hasPrefix(initial) && syllable.count > initial.count {
            return (initial, String(syllable.dropFirst(initial.count)))
        }
        return ("", syllable)
    }

    static func fuzzyInitial(_ initial: String) -> String {
        switch initial {
        case "zh": "z"
        case "ch": "c"
        case "sh": "s"
        case "n": "l"
        case "f": "h"
        default: initial
        }
    }

    static func fuzzyFinal(_ final: String) -> String {
        switch final {
        case "ang": "an"
        case "eng": "en"
        case "ing": "in"
        default: final
        }
    }
}
