import Foundation

/// Spells Arabic numerals in Chinese characters, the way Chinese transcripts are scored:
/// `2024年` can be read digit by digit (二零二四) and `3999元` as a number (三千九百九十九).
public enum ChineseNumerals {
    static let digits: [Character] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]

    /// Reads every digit on its own: `2024` -> 二零二四, `12.5` -> 一二点五.
    public static func digitByDigit(_ number: String) -> String {
        String(number.map { character -> Character in
            if let value = character.wholeNumberValue { return digits[value] }
            return character == "." ? "点" : character
        })
    }

    /// Reads a number as a cardinal: `3999` -> 三千九百九十九, `12.5` -> 十二点五,
    /// `105` -> 一百零五. Digits after a decimal point are read one by one.
    public static func cardinal(_ number: String) -> String {
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let integerDigits = parts[0].compactMap(\.wholeNumberValue)
        var result = cardinal(integerDigits: integerDigits)
        if parts.count == 2 {
            result += "点" + digitByDigit(String(parts[1]))
        }
        return result
    }

    private static func cardinal(integerDigits: [Int]) -> String {
        var value = integerDigits.drop { $0 == 0 }
        if value.isEmpty { return "零" }
        // Past 16 digits nobody reads a number as a cardinal.
        if value.count > 16 { return digitByDigit(value.map(String.init).joined()) }
        let groupUnits = ["", "万", "亿", "万亿"]
        var groups: [[Int]] = []
        while !value.isEmpty {
            let group = Array(value.suffix(4))
            groups.insert(group, at: 0)
            value = value.dropLast(group.count)
        }
        var result = ""
        var pendingZero = false
        for (index, group) in groups.enumerated() {
            let unit = groupUnits[groups.count - 1 - index]
            let padded = Array(repeating: 0, count: 4 - group.count) + group
            if padded.allSatisfy({ $0 == 0 }) { pendingZero = true; continue }
            if !result.isEmpty && (pendingZero || padded[0] == 0) { result += "零" }
            result += section(padded, isLeading: result.isEmpty) + unit
            pendingZero = padded[3] == 0
        }
        return result
    }

    /// Reads four digits (千百十个); a leading 一十 is said as 十.
    private static func section(_ digits: [Int], isLeading: Bool) -> String {
        let units = ["千", "百", "十", ""]
        var result = ""
        var zero = false
        for (position, digit) in digits.enumerated() {
            if digit == 0 {
                if !result.isEmpty { zero = true }
                continue
            }
            if zero { result += "零"; zero = false }
            if !(isLeading && result.isEmpty && position == 2 && digit == 1) {
                result.append(Self.digits[digit])
            }
            result += units[position]
        }
        return result
    }

    /// Replaces the Arabic numbers in `text` with Chinese characters, choosing for each the
    /// reading (digit by digit or cardinal) that `reference` uses, and the cardinal reading
    /// when the reference uses neither. `12.5%` becomes 百分之十二点五; `9:30` becomes 九点三十
    /// or 九点半; `3,999` is read as 3999.
    public static func spellOut(_ text: String, matching reference: String) -> String {
        let pattern = /([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(\.[0-9]+)?(?::([0-9]{2}))?(%|％)?/
        var output = ""
        var rest = Substring(text)
        while let match = rest.firstMatch(of: pattern) {
            output += rest[..<match.range.lowerBound]
            // Thousands separators ("3,999") are not read.
            let number = match.output.1.replacingOccurrences(of: ",", with: "") + (match.output.2 ?? "")
            var candidates = [cardinal(number), digitByDigit(number)]
            if let minutes = match.output.3 {
                let minuteReadings = minutes == "30" ? ["半", cardinal(String(minutes))] : [cardinal(String(minutes))]
                candidates = candidates.flatMap { hour in minuteReadings.map { hour + "点" + $0 } }
            }
            if match.output.4 != nil {
                candidates = candidates.map { "百分之" + $0 }
            }
            output += candidates.first { reference.contains($0) } ?? candidates[0]
            rest = rest[match.range.upperBound...]
        }
        return output + rest
    }
}
