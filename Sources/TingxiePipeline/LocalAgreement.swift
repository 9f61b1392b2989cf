/// Which part of a growing sentence's re-recognitions is settled enough to show: the prefix two
/// consecutive hypotheses agree on (whisper_streaming's "local agreement"). A re-decode may
/// still revise later words; what was shown is never taken back, so only new agreed text is
/// handed out, as FunASR clients append each partial message to what they show.
public struct LocalAgreement: Sendable {
    private var previous: [Character] = []
    /// The text handed out so far for this sentence.
    public private(set) var committed = ""
    /// Text shown that the sentence's final results have not repeated yet.
    private var unrepeated = ""

    public init() {}

    /// Takes the latest hypothesis for the open sentence; returns the text newly agreed on (often
    /// empty). A `settled` hypothesis (a streaming model's, which only grows) counts as agreed whole.
    public mutating func update(_ hypothesis: String, settled: Bool = false) -> String {
        let current = Array(hypothesis)
        var agreed = settled ? current.count : 0
        while agreed < min(previous.count, current.count), previous[agreed] == current[agreed] { agreed += 1 }
        previous = current
        let settled = current[..<agreed]
        // A revision of text already shown waits for the sentence's final result.
        guard settled.count > committed.count, settled.starts(with: committed) else { return "" }
        let added = String(settled.dropFirst(committed.count))
        committed += added
        return added
    }

    /// The sentence ended with this final text: returns what of it was not shown (all of it when
    /// the final result revised what was), and the next hypothesis starts a new sentence. A
    /// sentence the VAD heard whole may end as several (cut at pauses, or speech decoded again):
    /// each takes its part of what was shown. Punctuation and spaces (finals may be punctuated,
    /// partials not) do not count in the comparison.
    public mutating func finish(_ text: String) -> String {
        if !committed.isEmpty { unrepeated = committed }
        reset()
        let final = Array(text)
        let shown = Array(unrepeated)
        func ignored(_ character: Character) -> Bool { character.isPunctuation || character.isWhitespace }
        var (i, j) = (0, 0)
        while i < final.count, j < shown.count {
            if final[i] == shown[j] {
                (i, j) = (i + 1, j + 1)
            } else if ignored(final[i]) {
                i += 1
            } else if ignored(shown[j]) {
                j += 1
            } else {
                break
            }
        }
        if i == final.count, j < shown.count, !final.isEmpty {
            // All of this sentence was shown: the rest of what was shown belongs to the next.
            unrepeated = String(shown[j...])
            return ""
        }
        defer { unrepeated = "" }
        return j == shown.count ? String(final[i...]) : text
    }

    /// The sentence ended: the next hypothesis starts a new one.
    public mutating func reset() {
        previous = []
        committed = ""
    }
}
