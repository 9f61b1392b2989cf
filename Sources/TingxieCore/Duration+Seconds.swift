extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

extension Duration {
    /// Reads `90s`, `30m`, `24h`, `7d` (a number and a unit); `nil` for anything else.
    public init?(parsing text: String) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let value = Double(text.dropLast()), value >= 0, value.isFinite else {
            return nil
        }
        self = .seconds(value * unit)
    }
}
