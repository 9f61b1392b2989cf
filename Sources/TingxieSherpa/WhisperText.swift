/// Whisper's tokens are pieces of byte-level BPE: one Chinese character often takes two tokens,
/// the first ending inside its UTF-8 bytes.
public enum WhisperText {
    /// Joins each token that ends inside a character with the tokens that complete it.
    /// - Parameters:
    ///   - tokens: each token's bytes, in order.
    ///   - timestamps: each token's start, parallel to `tokens`; anything else means none.
    /// - Returns: text units of whole characters (a token's own characters, or one character
    ///   spread over several tokens) and, when `timestamps` were given, the start of the token
    ///   that each unit's first byte came in.
    public static func characters(_ tokens: [[UInt8]], timestamps: [Double]) -> (tokens: [String], timestamps: [Double]) {
        let timed = timestamps.count == tokens.count
        var units: [String] = []
        var starts: [Double] = []
        var pending: [UInt8] = []
        var start = 0.0
        for (index, bytes) in tokens.enumerated() where !bytes.isEmpty {
            if pending.isEmpty, timed { start = timestamps[index] }
            pending += bytes
            guard endsOnCharacter(pending) else { continue }
            units.append(String(decoding: pending, as: UTF8.self))
            if timed { starts.append(start) }
            pending.removeAll()
        }
        // Bytes that never completed a character come out as the text shows them (U+FFFD).
        if !pending.isEmpty {
            units.append(String(decoding: pending, as: UTF8.self))
            if timed { starts.append(start) }
        }
        return (units, starts)
    }

    /// Whether the bytes end where a UTF-8 character ends (a lead byte whose continuation bytes
    /// have all arrived, or an ASCII or stray byte).
    static func endsOnCharacter(_ bytes: [UInt8]) -> Bool {
        guard let leadIndex = bytes.lastIndex(where: { $0 & 0b1100_0000 != 0b1000_0000 }) else { return true }
        let lead = bytes[leadIndex]
        let length = switch lead {
        case 0b1111_0000...0b1111_0111: 4
        case 0b1110_0000...0b1110_1111: 3
        case 0b1100_0000...0b1101_1111: 2
        default: 1
        }
        return bytes.count - leadIndex >= length
    }
}
