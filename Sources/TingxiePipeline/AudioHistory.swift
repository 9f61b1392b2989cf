/// The most recent samples of a stream, in a fixed-size ring, so that a few hundred
/// milliseconds before a VAD segment can be added back to it.
struct AudioHistory {
    private var ring: [Float]
    /// Absolute index of the next sample to be written.
    private(set) var end = 0

    init(capacity: Int) {
        ring = [Float](repeating: 0, count: max(1, capacity))
    }

    mutating func append(_ samples: [Float]) {
        var rest = samples[...]
        // Only the last `ring.count` samples can survive.
        if rest.count > ring.count {
            end += rest.count - ring.count
            rest = rest.suffix(ring.count)
        }
        while !rest.isEmpty {
            let position = end % ring.count
            let count = min(rest.count, ring.count - position)
            ring.replaceSubrange(position..<(position + count), with: rest.prefix(count))
            rest = rest.dropFirst(count)
            end += count
        }
    }

    /// Samples `start..<(start + count)` if the ring still holds them all.
    func samples(from start: Int, count: Int) -> [Float]? {
        guard count > 0, start >= 0, start >= end - ring.count, start + count <= end else { return nil }
        return (start..<(start + count)).map { ring[$0 % ring.count] }
    }
}
