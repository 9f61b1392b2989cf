import Foundation

/// One subtitle cue: at most two short lines shown for at most `maxDuration` seconds.
public struct SubtitleCue: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var lines: [String]

    /// Characters per line; Chinese subtitles are usually kept to 15-20.
    public static let maxLineLength = 18
    public static let maxLines = 2
    public static let maxDuration = 7.0
    /// No cue is shorter than this, so that every cue can be read and none has zero length.
    public static let minDuration = 0.2

    /// Splits a transcript's segments into readable cues that never overlap.
    ///
    /// Long segments are cut into pieces of at most two lines and seven seconds; a piece's
    /// time is its share of the segment's characters.
    public static func cues(for transcript: Transcript) -> [SubtitleCue] {
        var cues: [SubtitleCue] = []
        for segment in transcript.segments {
            let characters = Array(segment.text.trimmingCharacters(in: .whitespaces))
            guard !characters.isEmpty, segment.end > segment.start else { continue }
            let duration = segment.end - segment.start
            // Enough pieces that each fits both the character and the time budget.
            let byLength = (characters.count + maxLineLength * maxLines - 1) / (maxLineLength * maxLines)
            let byTime = Int((duration / maxDuration).rounded(.up))
            let pieces = max(1, byLength, byTime)
            let perPiece = (characters.count + pieces - 1) / pieces
            var offset = 0
            while offset < characters.count {
                let upper = min(characters.count, offset + perPiece)
                let text = String(characters[offset..<upper])
                var start = segment.start + duration * Double(offset) / Double(characters.count)
                var end = segment.start + duration * Double(upper) / Double(characters.count)
                if let previous = cues.last, start < previous.end { start = previous.end }
                end = max(end, start + minDuration)
                cues.append(SubtitleCue(start: start, end: end, lines: wrap(text)))
                offset = upper
            }
        }
        return cues
    }

    /// Breaks a piece into lines of at most `maxLineLength` characters, preferring a break
    /// after punctuation or a space near the middle.
    static func wrap(_ text: String) -> [String] {
        let characters = Array(text)
        guard characters.count > maxLineLength else { return [text] }
        let middle = characters.count / 2
        let breakable: Set<Character> = ["，", "。", "、", "？", "！", "；", ",", ".", " ", "?", "!", ";"]
        var cut = middle
        for distance in 0...(middle / 2) {
            if middle + distance < characters.count, breakable.contains(characters[middle + distance - 1]) {
                cut = middle + distance; break
            }
            if middle - distance > 0, breakable.contains(characters[middle - distance - 1]) {
                cut = middle - distance; break
            }
        }
        cut = min(max(cut, characters.count - maxLineLength), maxLineLength)
        return [String(characters[..<cut]).trimmingCharacters(in: .whitespaces),
                String(characters[cut...]).trimmingCharacters(in: .whitespaces)]
    }
}
