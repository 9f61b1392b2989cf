import Foundation
import TingxieCore

/// A Whisper conversion's `*-tokens.txt`: each line the base64 of a token's bytes and its id.
public struct WhisperVocabulary: Sendable {
    public let tokens: [Data]

    public init(contentsOf url: URL) throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TingxieError(.modelNotFound, "cannot read \(url.path): \(error.localizedDescription)")
        }
        var tokens: [Data] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let bytes = Data(base64Encoded: String(fields[0])), Int(fields[1]) == number else {
                throw TingxieError(.invalidModel, "\(url.lastPathComponent) line \(number + 1) is not \"BASE64 \(number)\"")
            }
            tokens.append(bytes)
        }
        self.tokens = tokens
    }

    /// The text of `ids`; ids past the table (special and timestamp tokens) are left out.
    public func text(_ ids: [Int64]) -> String {
        var bytes = Data()
        for id in ids where id >= 0 && id < tokens.count { bytes.append(tokens[Int(id)]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
