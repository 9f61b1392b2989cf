import Foundation

/// A strict SRT/WebVTT cue parser for tests: every rule a player relies on is checked.
enum SubtitleParser {
    struct Cue { var start: Double; var end: Double; var lines: [String] }
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func parseSRT(_ text: String) throws -> [Cue] {
        try parseBlocks(text, separator: ",", numbered: true)
    }

    static func parseVTT(_ text: String) throws -> [Cue] {
        guard text.hasPrefix("WEBVTT\n") else { throw Failure(description: "missing WEBVTT header") }
        return try parseBlocks(String(text.dropFirst("WEBVTT\n".count)), separator: ".", numbered: false)
    }

    private static func parseBlocks(_ text: String, separator: Character, numbered: Bool) throws -> [Cue] {
        var cues: [Cue] = []
        let blocks = text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .newlines) }.filter { !$0.isEmpty }
        for (index, block) in blocks.enumerated() {
            var lines = block.components(separatedBy: "\n")
            if numbered {
                guard lines.first == String(index + 1) else { throw Failure(description: "cue \(index + 1) is numbered \(lines.first ?? "")") }
                lines.removeFirst()
            }
            guard let timing = lines.first else { throw Failure(description: "cue \(index + 1) has no timing") }
            let parts = timing.components(separatedBy: " --> ")
            guard parts.count == 2 else { throw Failure(description: "bad timing line \(timing)") }
            let start = try time(parts[0], separator), end = try time(parts[1], separator)
            let text = Array(lines.dropFirst())
            guard end > start else { throw Failure(description: "cue \(index + 1) has zero or negative length") }
            guard !text.isEmpty, text.allSatisfy({ !$0.isEmpty }) else { throw Failure(description: "cue \(index + 1) has no text") }
            if let previous = cues.last, start < previous.end { throw Failure(description: "cue \(index + 1) overlaps the previous one") }
            cues.append(Cue(start: start, end: end, lines: text))
        }
        return cues
    }

    /// `HH:MM:SS,mmm` exactly.
    private static func time(_ text: String, _ separator: Character) throws -> Double {
        let pattern = separator == "," ? /^(\d{2}):([0-5]\d):([0-5]\d),(\d{3})$/ : /^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$/
        guard let match = text.wholeMatch(of: pattern) else { throw Failure(description: "bad timestamp \(text)") }
        return Double(match.output.1)! * 3600 + Double(match.output.2)! * 60 + Double(match.output.3)! + Double(match.output.4)! / 1000
    }
}
