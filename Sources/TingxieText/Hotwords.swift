import Foundation
import TingxieCore

/// Model-agnostic biasing: finds spans of recognised text whose Mandarin pronunciation is close to
/// a hotword's and replaces them when the evidence is strong.
///
/// A span is compared syllable by syllable with tones: the model's characters read as they are
/// read in running text (`PinyinDictionary.commonReadings`), the hotword's with every modern
/// reading. The confusable pairs that ASR and regional accents mix up (zh/z, ch/c, sh/s, n/l,
/// f/h, an/ang, en/eng, in/ing) count as near misses. A rewrite needs every syllable of a short
/// term to sound the same, and all but one of a long one's; doubtful spans are left as they are,
/// unless `apply`'s `confirm` takes them.
/// A span that is itself a word in ordinary use is a plausible reading of the speech and stays;
/// so does a span that a two-character term would tear out of such a word (法务部 keeps 务部).
/// Terms are indexed by syllable, so the cost hardly grows with the list. Latin hotwords are
/// matched case-insensitively on word boundaries and fixed in case.
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
        var tone: Int
        var initial: String
        var fuzzyInitial: String
        var fuzzyFinal: String

        init(_ reading: PinyinDictionary.Reading) {
            full = reading.syllable
            tone = reading.tone
            let (initial, final) = HotwordMatcher.split(reading.syllable)
            self.initial = initial
            fuzzyInitial = HotwordMatcher.fuzzyInitial(initial)
            fuzzyFinal = HotwordMatcher.fuzzyFinal(final)
        }

        /// Syllables with the same key sound alike up to a confusable pair.
        var key: String { fuzzyInitial + "-" + fuzzyFinal }
    }

    /// The terms as given, including any the text stage cannot pronounce (a biased decoder
    /// may still use them).
    public let hotwords: [Hotword]
    private let entries: [Entry]
    /// Syllable key -> (entry, character offset) of every term character that can sound so.
    private let index: [String: [(entry: Int, offset: Int)]]
    private let latin: [Int]
    private let lexicon: Lexicon

    /// Mean similarity a span needs, for a hotword of weight 1, by the term's length: two
    /// characters must sound the same, tones included; three must all sound alike; four or more
    /// may have one weaker syllable.
    public static func threshold(length: Int) -> Double {
        switch length {
        case ...2: 1
        case 3: 0.85
        default: 0.8
        }
    }

    /// Similarity below which a syllable is a weak match.
    static let strong = 0.7
    /// Factor on the score of a span with one character more than the hotword.
    public static let insertionPenalty = 0.95

    public init(hotwords: [Hotword], lexicon: Lexicon) {
        self.hotwords = hotwords
        self.lexicon = lexicon
        entries = hotwords.compactMap { hotword in
            let characters = Array(hotword.text)
            guard !characters.isEmpty else { return nil }
            let isLatin = characters.allSatisfy { $0.isASCII }
            let readings = characters.map { lexicon.pinyin.toned($0).map(Syllable.init) }
            // A term with characters we cannot pronounce can only be matched literally (Latin).
            guard isLatin || readings.allSatisfy({ !$0.isEmpty }) else { return nil }
            return Entry(hotword: hotword, characters: characters, readings: readings, isLatin: isLatin)
        }
        var index: [String: [(entry: Int, offset: Int)]] = [:]
        var latin: [Int] = []
        for (number, entry) in entries.enumerated() {
            if entry.isLatin {
                latin.append(number)
                continue
            }
            for (offset, readings) in entry.readings.enumerated() {
                for key in Set(readings.map(\.key)) { index[key, default: []].append((number, offset)) }
            }
        }
        self.index = index
        self.latin = latin
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The same matcher without `terms` (those a biased decoder already took).
    public func without(_ terms: [Hotword]) -> HotwordMatcher {
        let taken = Set(terms.map(\.text))
        return HotwordMatcher(hotwords: hotwords.filter { !taken.contains($0.text) }, lexicon: lexicon)
    }

    private typealias Candidate = (start: Int, length: Int, entry: Entry, score: Double)

    /// Spans that are asked about (`apply`'s `confirm`) at most, per text.
    public static let maximumConfirmations = 3
    /// How far below `threshold` a span's similarity may be and still be asked about.
    public static let confirmableShortfall = 0.15

    /// A question `apply` asks: the text with a hotword in place of a span, and whether the
    /// hotword is itself an everyday word.
    public typealias Question = (replaced: String, hotword: Hotword, isWord: Bool)

    /// Returns `text` with hotwords applied, and where they were applied.
    /// - Parameter confirm: for the spans the text stage alone keeps, though they sound like a
    ///   hotword (an ordinary word) or nearly so (`confirmableShortfall`), asked all at once
    ///   (a decoder that weighs them against the audio): whether to take each.
    public func apply(to text: String, confirm: (([Question]) -> [Bool])? = nil)
        -> (text: String, applications: [HotwordApplication]) {
        let characters = Array(text)
        var parsed: [Character: [Syllable]] = [:]
        let readings = characters.map { character in
            if let known = parsed[character] { return known }
            let syllables = lexicon.pinyin.toned(character, commonOnly: true).map(Syllable.init)
            parsed[character] = syllables
            return syllables
        }
        var candidates = latinCandidates(characters)
        var doubtful: [Candidate] = []
        // Which characters of which term could sound like the text, by where the term would start.
        var votes: [Int: UInt64] = [:]
        for (position, syllables) in readings.enumerated() {
            for key in Set(syllables.map(\.key)) {
                for (number, offset) in index[key] ?? [] where position >= offset {
                    votes[number * (characters.count + 1) + position - offset, default: 0] |= 1 << UInt64(offset)
                }
            }
        }
        for (slot, mask) in votes {
            let (number, start) = slot.quotientAndRemainder(dividingBy: characters.count + 1)
            let entry = entries[number]
            let length = entry.characters.count
            let needed = length - Self.weakAllowed(length)
            if mask.nonzeroBitCount >= needed, start + length <= characters.count {
                candidates += candidate(entry, at: start, skipping: nil, characters, readings, doubtful: &doubtful)
            }
            // ASR often inserts a character into a name (a particle such as 的): for terms of
            // three or more characters, a span one longer whose other characters match, with a
            // penalty, also counts. The characters after the insertion vote for the next start.
            let next = votes[slot + 1] ?? 0
            guard length >= 3, start + length + 1 <= characters.count, (mask | next).nonzeroBitCount >= needed else { continue }
            for inserted in (start + 1)..<(start + length) {
                candidates += candidate(entry, at: start, skipping: inserted, characters, readings, doubtful: &doubtful)
            }
        }
        if let confirm, !doubtful.isEmpty {
            // Best first, in a fixed order; never a span a hotword already holds, nor the same text twice.
            let claimed = candidates.filter { $0.score > 1 }
            func isClaimed(_ span: Candidate) -> Bool {
                claimed.contains { $0.start < span.start + span.length && span.start < $0.start + $0.length }
            }
            func replaced(_ span: Candidate) -> String {
                String(characters[..<span.start]) + String(span.entry.characters) + String(characters[(span.start + span.length)...])
            }
            let ordered = doubtful.sorted { a, b in
                a.score != b.score ? a.score > b.score : a.start != b.start ? a.start < b.start : a.entry.hotword.text < b.entry.hotword.text
            }
            var texts = Set<String>()
            var asked: [(span: Candidate, text: String)] = []
            for span in ordered where asked.count < Self.maximumConfirmations && !isClaimed(span) {
                let text = replaced(span)
                if texts.insert(text).inserted { asked.append((span, text)) }
            }
            let answers = asked.isEmpty ? [] : confirm(asked.map { ($0.text, $0.span.entry.hotword, lexicon.words.contains($0.span.entry.characters[...])) })
            for (question, taken) in zip(asked, answers) where taken { candidates.append(question.span) }
        }
        return Self.replace(characters, with: candidates)
    }

    /// The span from `start` as a candidate for `entry`, the character at `inserted` left out;
    /// one that is an ordinary word or falls a little short goes to `doubtful` instead.
    private func candidate(_ entry: Entry, at start: Int, skipping inserted: Int?, _ characters: [Character],
                           _ readings: [[Syllable]], doubtful: inout [Candidate]) -> [Candidate] {
        let length = entry.characters.count
        let spanLength = length + (inserted == nil ? 0 : 1)
        if inserted == nil, characters[start..<(start + length)].elementsEqual(entry.characters) {
            // Already right: claim the span so that no other hotword rewrites it.
            return [(start, length, entry, 2)]
        }
        var total = 0.0
        var weak = 0
        for offset in 0..<length {
            let position = start + offset + (inserted.map { start + offset >= $0 ? 1 : 0 } ?? 0)
            let value = Self.similarity(entry, offset, characters[position], readings[position])
            if value < Self.strong { weak += 1 }
            if value < 0.4 || weak > Self.weakAllowed(length) { return [] }
            total += value
        }
        let score = total / Double(length) * (inserted == nil ? 1 : Self.insertionPenalty)
        guard score >= required(entry) - Self.confirmableShortfall else { return [] }
        if score < required(entry) || isOrdinary(characters, start, spanLength, short: length <= 2) {
            doubtful.append((start, spanLength, entry, score))
            return []
        }
        return [(start, spanLength, entry, score)]
    }

    /// Whether the span is a word in ordinary use, or, for a short term, part of one that
    /// reaches beyond it: then the model's reading is plausible and stays.
    private func isOrdinary(_ characters: [Character], _ start: Int, _ length: Int, short: Bool) -> Bool {
        let end = start + length
        if lexicon.words.contains(characters[start..<end]) { return true }
        guard short else { return false }
        for from in max(0, start - 3)..<end {
            for to in stride(from: max(from + 2, start + 1), through: min(characters.count, from + 4), by: 1)
            where (from < start || to > end) && lexicon.words.contains(characters[from..<to]) {
                return true
            }
        }
        return false
    }

    /// Latin terms, case-insensitively on word boundaries: fixed in case, or claimed when right.
    private func latinCandidates(_ characters: [Character]) -> [Candidate] {
        guard !latin.isEmpty, characters.contains(where: { $0.isASCII && $0.isLetter }) else { return [] }
        let lowered = characters.map { Character($0.lowercased()) }
        var candidates: [Candidate] = []
        for number in latin {
            let entry = entries[number]
            let term = entry.characters.map { Character($0.lowercased()) }
            guard term.count <= characters.count else { continue }
            for start in 0...(characters.count - term.count)
            where lowered[start..<(start + term.count)].elementsEqual(term) && Self.isWordBoundary(characters, start, term.count) {
                let exact = characters[start..<(start + term.count)].elementsEqual(entry.characters)
                candidates.append((start, term.count, entry, exact ? 2 : 1))
            }
        }
        return candidates
    }

    /// Applies the best candidates that do not overlap (longer first on ties); claims (score 2)
    /// keep their span unchanged.
    private static func replace(_ characters: [Character], with candidates: [Candidate]) -> (text: String, applications: [HotwordApplication]) {
        let sorted = candidates.sorted { $0.score != $1.score ? $0.score > $1.score : $0.length > $1.length }
        var taken = [Bool](repeating: false, count: characters.count)
        var chosen: [Candidate] = []
        for candidate in sorted where !taken[candidate.start..<(candidate.start + candidate.length)].contains(true) {
            for index in candidate.start..<(candidate.start + candidate.length) { taken[index] = true }
            if candidate.score <= 1 { chosen.append(candidate) }
        }
        guard !chosen.isEmpty else { return (String(characters), []) }
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

    /// The bar for `entry`: each unit of weight above 1 lowers it a little, by at most 0.1, and
    /// a weight below 1 raises it.
    private func required(_ entry: Entry) -> Double {
        Self.threshold(length: entry.characters.count) - min(0.1, 0.03 * (entry.hotword.weight - 1))
    }

    /// Weak syllables a term of `length` characters tolerates.
    static func weakAllowed(_ length: Int) -> Int { length >= 4 ? 1 : 0 }

    /// How close `character` (read as `spoken`) sounds to the hotword's character at `offset`:
    /// 1 for the same character, the best syllable similarity over both sets of readings else.
    private static func similarity(_ entry: Entry, _ offset: Int, _ character: Character, _ spoken: [Syllable]) -> Double {
        if character == entry.characters[offset] { return 1 }
        var best = 0.0
        for a in spoken { for b in entry.readings[offset] { best = max(best, similarity(a, b)) } }
        return best
    }

    private static func isWordBoundary(_ characters: [Character], _ start: Int, _ length: Int) -> Bool {
        func isWordCharacter(_ index: Int) -> Bool {
            characters.indices.contains(index) && characters[index].isASCII && (characters[index].isLetter || characters[index].isNumber)
        }
        return !isWordCharacter(start - 1) && !isWordCharacter(start + length)
    }

    /// Similarity of two syllables: 1 the same (a neutral tone matches any), 0.9 the same but
    /// for the tone; 0.8 the same up to a confusable pair, 0.7 with another tone; then weak
    /// matches: 0.5 the same final, 0.4 the same initial; 0 otherwise.
    static func similarity(_ a: Syllable, _ b: Syllable) -> Double {
        let sameTone = a.tone == b.tone || a.tone == 5 || b.tone == 5
        if a.full == b.full { return sameTone ? 1 : 0.9 }
        let sameFinal = a.fuzzyFinal == b.fuzzyFinal
        let sameInitial = a.fuzzyInitial == b.fuzzyInitial
        if sameInitial && sameFinal { return sameTone ? 0.8 : 0.7 }
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
