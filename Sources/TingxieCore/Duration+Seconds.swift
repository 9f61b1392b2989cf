extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

extension Duration {
    /// Reads `90s`, `30m`, `24h`, `7d` (a number and a unit) up to ten years; `nil` for anything else.
    public init?(parsing text: String) {
        guard let duration = try? ClientNumber.duration(text, field: "duration", upTo: Self.longestParsed) else { return nil }
        self = duration
    }

    /// Ten years: longer durations are refused, so that no date arithmetic on them can trap.
    public static let longestParsed = 3650 * 86_400.0
}
