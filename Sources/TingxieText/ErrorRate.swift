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

    /// For each character of each reference sentence (in scoring form), whether the hypothesis has
    /// a character in its place (the same or a substitute) when the whole hypothesis is aligned
    /// with the sentences joined: a sentence whose characters are mostly unmatched was not heard.
    public static func heardCharacters(hypothesis: String, sentences: [String]) -> [[Bool]] {
        let forms = sentences.map(scoringForm)
        let ref = forms.flatMap { $0 }
        let hyp = scoringForm(ChineseNumerals.spellOut(hypothesis, matching: String(ref)))
        // Full table of edit distances, walked back from the end for one best alignment.
        let width = hyp.count + 1
        var table = [Int32](repeating: 0, count: (ref.count + 1) * width)
        for j in 0...hyp.count { table[j] = Int32(j) }
        for i in stride(from: 1, through: ref.count, by: 1) {
            table[i * width] = Int32(i)
            for j in stride(from: 1, through: hyp.count, by: 1) {
                let substitution = table[(i - 1) * width + j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1)
                table[i * width + j] = min(substitution, table[(i - 1) * width + j] + 1, table[i * width + j - 1] + 1)
            }
        }
        var heard = [Bool](repeating: false, count: ref.count)
        var (i, j) = (ref.count, hyp.count)
        while i > 0 {
            let here = table[i * width + j]
            if j > 0, here == table[(i - 1) * width + j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1) {
                heard[i - 1] = true
                (i, j) = (i - 1, j - 1)
            } else if here == table[(i - 1) * width + j] + 1 {
                i -= 1
            } else {
                j -= 1
            }
        }
        var start = 0
        return forms.map { form in
            defer { start += form.count }
            return Array(heard[start..<start + form.count])
        }
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
