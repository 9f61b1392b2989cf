/// The one way a number a client sent (query, form field, header, stream config) becomes a value:
/// bounded in length and range, never NaN or infinite, so no arithmetic on it can trap. A bad
/// value is a `TingxieError(.invalidArgument)` naming the field and the range it accepts.
public enum ClientNumber {
    /// Longer texts are refused before they are parsed (10 KB of digits is no number).
    public static let maxLength = 32

    /// A whole number in `range`.
    public static func integer(_ text: some StringProtocol, field: String, in range: ClosedRange<Int>) throws -> Int {
        guard text.count <= maxLength, let value = Int(text), range.contains(value) else {
            throw TingxieError(.invalidArgument, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound)\(shown(text))")
        }
        return value
    }

    /// A whole number in `range` that arrived as a JSON number.
    public static func integer(_ value: Double, field: String, in range: ClosedRange<Int>) throws -> Int {
        guard value.isFinite, value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            throw TingxieError(.invalidArgument, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound); got \(value)")
        }
        return Int(value)
    }

    /// A finite number in `range`.
    public static func number(_ text: some StringProtocol, field: String, in range: ClosedRange<Double>) throws -> Double {
        guard text.count <= maxLength, let value = Double(text), value.isFinite, range.contains(value) else {
            throw TingxieError(.invalidArgument, "\(field) must be a number from \(format(range.lowerBound)) to \(format(range.upperBound))\(shown(text))")
        }
        return value
    }

    /// A duration such as `90s`, `30m`, `24h` or `7d`, at most `limit` seconds.
    public static func duration(_ text: some StringProtocol, field: String, upTo limit: Double) throws -> Duration {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard text.count <= maxLength, let unit = text.last.flatMap({ units[$0] }),
              let value = Double(text.dropLast()), value.isFinite, value >= 0, value * unit <= limit else {
            throw TingxieError(.invalidArgument, "\(field) must be a duration such as 30m, 24h or 7d, at most \(format(limit / 86_400)) days\(shown(text))")
        }
        return .seconds(value * unit)
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    private static func shown(_ text: some StringProtocol) -> String {
        "; got \"\(text.prefix(maxLength))\(text.count > maxLength ? "..." : "")\""
    }
}
