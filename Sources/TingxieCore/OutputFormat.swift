import Foundation

/// The formats a transcript can be written in.
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    case txt, json, srt, vtt

    /// The HTTP content type of a rendered transcript.
    public var contentType: String {
        switch self {
        case .txt: "text/plain; charset=utf-8"
        case .json: "application/json"
        case .srt: "application/x-subrip"
        case .vtt: "text/vtt"
        }
    }

    /// Renders a transcript in this format.
    public func render(_ transcript: Transcript) -> String {
        switch self {
        case .txt:
            return transcript.segments.map(\.text).joined(separator: "\n") + (transcript.segments.isEmpty ? "" : "\n")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            // Encoding plain structs of strings and numbers cannot fail.
            let data = (try? encoder.encode(transcript)) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        case .srt:
            return SubtitleCue.cues(for: transcript).enumerated().map { index, cue in
                "\(index + 1)\n\(Self.timestamp(cue.start, separator: ",")) --> \(Self.timestamp(cue.end, separator: ","))\n\(cue.lines.joined(separator: "\n"))\n"
            }.joined(separator: "\n")
        case .vtt:
            let body = SubtitleCue.cues(for: transcript).map { cue in
                "\(Self.timestamp(cue.start, separator: ".")) --> \(Self.timestamp(cue.end, separator: "."))\n\(cue.lines.joined(separator: "\n"))\n"
            }.joined(separator: "\n")
            // What the transcript lacks goes in NOTE blocks, which players do not show.
            let notes = (transcript.warnings ?? []).map { "\nNOTE \($0.replacingOccurrences(of: "-->", with: "->"))\n" }.joined()
            return body.isEmpty ? "WEBVTT\n" + notes : "WEBVTT\n" + notes + "\n" + body
        }
    }

    /// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
    static func timestamp(_ seconds: Double, separator: String) -> String {
        let totalMs = max(0, Int((seconds * 1000).rounded()))
        let ms = totalMs % 1000
        let s = (totalMs / 1000) % 60
        let m = (totalMs / 60_000) % 60
        let h = totalMs / 3_600_000
        return String(format: "%02d:%02d:%02d%@%03d", h, m, s, separator, ms)
    }
}
