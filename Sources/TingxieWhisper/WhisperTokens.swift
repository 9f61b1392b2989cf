import TingxieCore

/// The special tokens of a Whisper model, from the converter's metadata.
public struct WhisperTokens: Sendable, Equatable {
    public let sot: Int64, eot: Int64, transcribe: Int64, translate: Int64, noTimestamps: Int64
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
}
