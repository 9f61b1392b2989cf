extension Array where Element == Double {
    /// The nearest-rank `p` percentile (0...1) of these values, which must be sorted; NaN when
    /// there are none.
    func percentile(_ p: Double) -> Double {
        isEmpty ? .nan : self[Swift.max(0, Swift.min(count - 1, Int((p * Double(count)).rounded(.up)) - 1))]
    }
}
