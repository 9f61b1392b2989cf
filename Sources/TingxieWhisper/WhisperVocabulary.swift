import Foundation
import TingxieCore

/// A Whisper conversion's `*-tokens.txt`: each line the base64 of a token's bytes and its id.
public struct WhisperVocabulary: Sendable {
    public let tokens: [Data]
    /// Each token's id by its bytes: a Whisper vocabulary's ids are its merge ranks.
    private let ids: [Data: Int64]

    public init(contentsOf url: URL) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TingxieError(.modelNotFound, "cannot read \(url.path): \(error.localizedDescription)")
        }
        var tokens: [Data] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let bytes = Data(base64Encoded: String(fields[0])), Int(fields[1]) == number else {
                throw TingxieError(.invalidModel, "\(url.lastPathComponent) line \(number + 1) is not \"BASE64 \(number)\"")
            }
            tokens.append(bytes)
        }
        self.tokens = tokens
        ids = Dictionary(tokens.enumerated().map { ($1, Int64($0)) }, uniquingKeysWith: min)
    }

    /// `text` in tokens as Whisper's tokenizer (tiktoken) writes it: the text split into words,
    /// numbers, other marks and spaces as GPT-2 splits it, each part's bytes then merged pair by
    /// pair, the pair of the lowest id first.
    public func encode(_ text: String) -> [Int64] {
        Self.words(text).flatMap { merge(Data($0.utf8)) }
    }

    private func merge(_ word: Data) -> [Int64] {
        var parts = word.map { Data([$0]) }
        while parts.count > 1 {
            var best: (id: Int64, at: Int)?
            for i in 0..<(parts.count - 1) {
                if let id = ids[parts[i] + parts[i + 1]], best.map({ id < $0.id }) ?? true { best = (id, i) }
            }
            guard let best else { break }
            parts[best.at] += parts.remove(at: best.at + 1)
        }
        return parts.compactMap { ids[$0] }
    }

    /// GPT-2's split: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func words(_ text: String) -> [Substring] {
        enum Kind { case letter, number, space, other }
        func kind(_ scalar: Unicode.Scalar) -> Kind {
            if scalar.properties.isWhitespace { return .space }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
            case .decimalNumber, .letterNumber, .otherNumber: return .number
            default: return .other
            }
        }
        let scalars = text.unicodeScalars
        var words: [Substring] = []
        var i = scalars.startIndex
        while i < scalars.endIndex {
            var j = i
            let next = String(String.UnicodeScalarView(scalars[i...].dropFirst().prefix(2)))
            if scalars[i] == "'", let suffix = ["s", "t", "re", "ve", "m", "ll", "d"].first(where: { next.hasPrefix($0) }) {
                j = scalars.index(i, offsetBy: 1 + suffix.unicodeScalars.count)
            } else {
                var first = i
                if scalars[i] == " ", scalars.index(after: i) < scalars.endIndex, kind(scalars[scalars.index(after: i)]) != .space {
                    first = scalars.index(after: i)
                }
                let wanted = kind(scalars[first])
                j = scalars.index(after: first)
                while j < scalars.endIndex, kind(scalars[j]) == wanted { j = scalars.index(after: j) }
                if wanted == .space, j < scalars.endIndex, scalars.distance(from: i, to: j) > 1 {
                    j = scalars.index(before: j)  // the last space goes with the next word
                }
            }
            words.append(Substring(text.unicodeScalars[i..<j]))
            i = j
        }
        return words
    }

    /// The text of `ids`; ids past the table (special and timestamp tokens) are left out.
    public func text(_ ids: [Int64]) -> String {
        var bytes = Data()
        for id in ids where id >= 0 && id < tokens.count { bytes.append(tokens[Int(id)]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
