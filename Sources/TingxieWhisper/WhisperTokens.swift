import TingxieCore

/// The special tokens of a Whisper model, from the converter's metadata.
public struct WhisperTokens: Sendable, Equatable {
    public let sot: Int64, eot: Int64, transcribe: Int64, translate: Int64, noTimestamps: Int64
    /// <|startofprev|>, which opens the previous text (hotwords); nil where the metadata lacks it.
    public let previous: Int64?
    /// Language codes ("zh", "en", …) and their tokens.
    public let languages: [String: Int64]

    /// The first timestamp token, <|0.00|>; each next one is 20 ms later.
    public var timestampBegin: Int64 { noTimestamps + 1 }

    public init(metadata: [String: String]) throws {
        func token(_ key: String) throws -> Int64 {
            guard let value = metadata[key].flatMap({ Int64($0) }), value >= 0 else {
                throw TingxieError(.invalidModel, "the Whisper model's metadata has no usable \(key)")
            }
            return value
        }
        sot = try token("sot")
        eot = try token("eot")
        transcribe = try token("transcribe")
        translate = try token("translate")
        noTimestamps = try token("no_timestamps")
        let (eot, noTimestamps) = (eot, noTimestamps)
        previous = metadata["sot_prev"].flatMap { Int64($0) }.flatMap { $0 > eot && $0 < noTimestamps ? $0 : nil }
        let codes = (metadata["all_language_codes"] ?? "").split(separator: ",").map(String.init)
        let ids = (metadata["all_language_tokens"] ?? "").split(separator: ",").compactMap { Int64($0) }
        guard codes.count == ids.count else {
            throw TingxieError(.invalidModel, "the Whisper model's all_language_codes and all_language_tokens differ in length")
        }
        languages = Dictionary(zip(codes, ids), uniquingKeysWith: { first, _ in first })
    }

    /// <|startoftranscript|> <|language|> <|transcribe|> (or <|translate|>).
    /// - Throws: `.invalidArgument` for a language the model does not know.
    public func prompt(language: String, translating: Bool = false) throws -> [Int64] {
        guard let id = languages[language] else {
            throw TingxieError(.invalidArgument, "the model does not know the language \"\(language)\"")
        }
        return [sot, id, translating ? translate : transcribe]
    }

    /// Tokens of previous text at most: the decoder feeds them one a step with the rest.
    public static let previousLimit = 48

    /// <|startofprev|> and the terms, highest weight first, as many as fit `previousLimit`
    /// tokens: the previous text that makes Whisper likelier to write them (faster-whisper's
    /// `hotwords`). Empty where the model has no <|startofprev|>.
    public func previousText(_ terms: [Hotword], vocabulary: WhisperVocabulary) -> [Int64] {
        guard let previous else { return [] }
        let ranked = terms.enumerated().sorted { ($0.element.weight, -$0.offset) > ($1.element.weight, -$1.offset) }.map(\.element.text)
        var context: [Int64] = []
        var listed: [String] = []
        for term in ranked {
            let tokens = vocabulary.encode(" " + (listed + [term]).joined(separator: "、"))
            if tokens.count + 1 > Self.previousLimit { continue }
            listed.append(term)
            context = [previous] + tokens
        }
        return context
    }
}
