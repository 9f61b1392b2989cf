import Foundation
import TingxieCore

/// Cleans up recognised text: trims it and, for Chinese, drops spaces between Chinese characters
/// (Whisper sometimes writes one where a comma would go) and maps Traditional characters to
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
        guard let converter else { return trimmed }
        return converter.convert(Self.closingSpacesBetweenWideCharacters(trimmed))
    }

    /// The text without the spaces that have a Chinese or Japanese character on both sides.
    static func closingSpacesBetweenWideCharacters(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        var spaces = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.properties.isWhitespace {
                spaces.append(scalar)
                continue
            }
            if !spaces.isEmpty, !(scalar.isWrittenWithoutSpaces && scalars.last?.isWrittenWithoutSpaces == true) {
                scalars.append(contentsOf: spaces)
            }
            spaces.removeAll()
            scalars.append(scalar)
        }
        scalars.append(contentsOf: spaces)
        return String(scalars)
    }
}

extension Unicode.Scalar {
    /// Chinese and Japanese characters, their punctuation and full-width forms: scripts written
    /// without spaces between words.
    public var isWrittenWithoutSpaces: Bool {
        properties.isIdeographic || (0x3000...0x30FF).contains(value) || (0xFF00...0xFFEF).contains(value)
    }
}
