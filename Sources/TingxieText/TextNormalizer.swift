import Foundation
import TingxieCore

/// Cleans up recognised text: trims it and, for Chinese, maps Traditional characters to
/// Simplified (Whisper often answers in Traditional).
public struct TextNormalizer: Sendable {
    private let converter: ChineseConverter?

    /// - Parameter toSimplified: a converter to apply, or `nil` to keep the text's characters.
    public init(toSimplified converter: ChineseConverter?) {
        self.converter = converter
    }

    /// A normaliser suited to a language: Traditional->Simplified for `zh` (and `nil`,
    /// Tingxie's default language), nothing otherwise.
    public static func forLanguage(_ language: String?) throws -> TextNormalizer {
        TextNormalizer(toSimplified: language.map(isChinese) ?? true ? try ChineseConverter() : nil)
    }

    /// Whether text in `language` is Chinese: written in Simplified characters, and the
    /// language hotwords are matched in.
    public static func isChinese(_ language: String) -> Bool {
        language == "zh" || language.hasPrefix("zh-")
    }

    public func normalize(_ text: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return converter?.convert(trimmed) ?? trimmed
    }
}
