import TingxieCore

/// Punctuation added to a finished segment's text, after hotwords: marks land between words,
/// never inside a hotword, and each hotword's offset follows its text.
enum PunctuationStage {
    /// `text` punctuated by `punctuator`, and `applications` with their offsets in it. The text
    /// comes back unchanged when the punctuator changed more than punctuation and spaces.
    static func apply(_ punctuator: any Punctuator, to text: String,
                      applications: [HotwordApplication]) -> (text: String, applications: [HotwordApplication]) {
        let plain = Array(text)
        let punctuated = Array(punctuator.punctuate(text))
        // Where each character of the text is in the punctuated one (spaces may go).
        var position = [Int](repeating: 0, count: plain.count)
        var next = 0
        for (index, character) in plain.enumerated() {
            if character.isWhitespace {
                position[index] = next
                if next < punctuated.count, punctuated[next].isWhitespace { next += 1 }
                continue
            }
            guard let found = punctuated[next...].firstIndex(of: character),
                  punctuated[next..<found].allSatisfy({ $0.isPunctuation || $0.isWhitespace }) else {
                return (text, applications)
            }
            position[index] = found
            next = found + 1
        }
        // Marks the punctuator put inside a hotword are dropped.
        var dropped = Set<Int>()
        for application in applications where application.offset < plain.count {
            let last = min(plain.count, application.offset + application.hotword.count) - 1
            guard last > application.offset else { continue }
            dropped.formUnion(position[application.offset]..<position[last])
        }
        dropped.subtract(position)
        var kept: [Character] = []
        var newPosition = [Int](repeating: 0, count: punctuated.count + 1)
        for (index, character) in punctuated.enumerated() {
            newPosition[index] = kept.count
            if !dropped.contains(index) { kept.append(character) }
        }
        let moved = applications.map { application in
            var application = application
            if application.offset < plain.count { application.offset = newPosition[position[application.offset]] }
            return application
        }
        return (String(kept), moved)
    }
}
