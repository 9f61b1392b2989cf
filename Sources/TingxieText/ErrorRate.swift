/// Character error rate, scored the standard way for Chinese.
public enum ErrorRate {
    /// Removes what scoring ignores: punctuation, symbols and whitespace.
    public static func scoringForm(_ text: String) -> [Character] {
        text.filter { character in
            !character.isWhitespace && !character.isPunctuation && !character.isSymbol
        }.map { $0 }
    }

    /// Edit distance between two character sequences (substitutions, insertions, deletions).
    public static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// Errors and reference length for one hypothesis, after both texts are in scoring form and
    /// the hypothesis's Arabic numerals are spelled the way the reference spells them. Both texts
    /// should already be in Simplified characters.
    public static func count(hypothesis: String, reference: String) -> (errors: Int, length: Int) {
        let ref = scoringForm(reference)
        let hyp = scoringForm(ChineseNumerals.spellOut(hypothesis, matching: String(ref)))
        return (editDistance(hyp, ref), ref.count)
    }

    /// Pooled CER over many utterances: total errors divided by total reference characters.
    public static func characterErrorRate(_ pairs: [(hypothesis: String, reference: String)]) -> Double {
        var errors = 0
        var length = 0
        for pair in pairs {
            let scored = count(hypothesis: pair.hypothesis, reference: pair.reference)
            errors += scored.errors
            length += scored.length
        }
        return length == 0 ? 0 : Double(errors) / Double(length)
    }
}
