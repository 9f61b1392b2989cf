import Foundation

/// A term that should come out right, with how strongly to favour it (1 is normal).
public struct Hotword: Sendable, Equatable, Codable {
    public var text: String
    public var weight: Double

    public init(_ text: String, weight: Double = 1) {
        self.text = text
        self.weight = weight
    }

    /// Limits that keep matching cheap and requests honest.
    public static let maxCount = 1000
    public static let maxLength = 32
    public static let weightRange = 0.1...10.0

    /// Parses hotwords: one per line or separated by commas, each optionally followed by a weight
    /// (`鲲鹏处理器 2`). Blank lines and `#` comments are skipped; duplicates keep the highest weight.
    /// - Throws: `TingxieError(.invalidArgument)` naming the offending entry.
    public static func parse(_ text: String, source: String) throws -> [Hotword] {
        var hotwords = List()
        // Comments are whole lines, commas and all.
        let entries = text.split(separator: "\n")
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .flatMap { $0.split(whereSeparator: { $0 == "," || $0 == "，" }) }
        for entry in entries {
            let line = entry.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            var parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            var weight = 1.0
            if parts.count > 1, let parsed = Double(parts.last!) {
                guard weightRange.contains(parsed) else {
                    throw TingxieError(.invalidArgument, "\(source): hotword \"\(line)\" has weight \(parsed); weights go from \(weightRange.lowerBound) to \(weightRange.upperBound)")
                }
                weight = parsed
                parts.removeLast()
            }
            let term = parts.joined(separator: " ")
            guard term.count <= maxLength else {
                throw TingxieError(.invalidArgument, "\(source): hotword \"\(term.prefix(40))...\" is longer than \(maxLength) characters")
            }
            hotwords.add(Hotword(term, weight: weight))
            guard hotwords.terms.count <= maxCount else {
                throw TingxieError(.invalidArgument, "\(source): more than \(maxCount) hotwords; at most \(maxCount) are accepted")
            }
        }
        return hotwords.terms
    }

    /// Terms in free text such as OpenAI's `prompt` ("ZyntriQix, Digique Plus"): split at
    /// punctuation and line breaks, without weights. Pieces longer than `maxLength` are prose,
    /// not terms, and are left out, as is anything past `maxCount`: a prompt is a hint, never
    /// a reason to refuse the request.
    public static func terms(inPrompt text: String) -> [Hotword] {
        let separators: Set<Character> = [",", "，", "、", ";", "；", "。", "!", "！", "?", "？", ":", "：", "\n", "\r", "\t", "\"", "“", "”"]
        var terms = List()
        // A full stop ends a sentence only before a space or the end ("Node.js" stays whole).
        for piece in text.replacingOccurrences(of: #"\.(\s|$)"#, with: "\n", options: .regularExpression).split(whereSeparator: separators.contains) {
            let term = piece.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            guard !term.isEmpty, term.count <= maxLength, !term.hasPrefix("#") else { continue }
            terms.add(Hotword(term))
            if terms.terms.count == maxCount { break }
        }
        return terms.terms
    }

    /// The list as `parse` reads it back: one `term weight` line each (the weight always given,
    /// so that a term ending in a number keeps it).
    public static func listText(_ hotwords: [Hotword]) -> String {
        hotwords.map { "\($0.text) \($0.weight)" }.joined(separator: "\n")
    }

    /// Reads a hotwords file (one term per line, optionally `term weight`).
    /// - Throws: `TingxieError(.fileNotFound)` when it cannot be read, `.invalidArgument` for a
    ///   bad entry, naming the file.
    public static func load(_ path: String) throws -> [Hotword] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw TingxieError(.fileNotFound, "cannot read hotwords file \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }

    /// Merges lists (server-wide file, request), keeping the highest weight of a repeated term.
    /// - Throws: `TingxieError(.invalidArgument)` when together they hold more than `maxCount`.
    public static func merge(_ lists: [Hotword]...) throws -> [Hotword] {
        var merged = List()
        for hotword in lists.joined() { merged.add(hotword) }
        guard merged.terms.count <= maxCount else {
            throw TingxieError(.invalidArgument, "\(merged.terms.count) hotwords together; at most \(maxCount) are accepted")
        }
        return merged.terms
    }

    /// Terms in order, each once: a repeated term keeps the higher of its weights. Adding is
    /// constant time, so long lists parse in linear time.
    private struct List {
        var terms: [Hotword] = []
        var positions: [String: Int] = [:]

        mutating func add(_ hotword: Hotword) {
            if let index = positions[hotword.text] {
                terms[index].weight = max(terms[index].weight, hotword.weight)
            } else {
                positions[hotword.text] = terms.count
                terms.append(hotword)
            }
        }
    }
}
