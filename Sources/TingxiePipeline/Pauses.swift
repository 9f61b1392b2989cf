import TingxieAudio

/// Which 20 ms frames of a speech segment are quiet: where a sentence the VAD heard together
/// with the next one ends (the pause between them shorter than its minimum silence), and which
/// parts of a stretch hold sound at all.
struct Pauses {
    /// Energy is compared over frames of this many samples (20 ms).
    static let frame = 320
    /// A frame is quiet below this share of the energy of the segment's loud frames (its 90th
    /// percentile): about 17 dB down, under the noise of a recording at 20 dB SNR.
    static let quietShare: Float = 0.02
    /// The shortest pause that ends a sentence: half the VAD's minimum silence (0.6 s). Pauses
    /// between the clauses of one sentence are mostly shorter.
    static let minimumSamples = 3 * modelSampleRate / 10

    /// Per frame, whether it is quiet.
    private let quiet: [Bool]

    init(_ samples: [Float]) {
        // The last frame may be shorter.
        let energies = stride(from: 0, to: samples.count, by: Self.frame).map { start in
            let end = min(samples.count, start + Self.frame)
            return samples[start..<end].reduce(Float(0)) { $0 + $1 * $1 } / Float(end - start)
        }
        let loud = energies.isEmpty ? 0 : energies.sorted()[energies.count * 9 / 10]
        quiet = energies.map { $0 < loud * Self.quietShare }
    }

    /// The longest run of quiet frames that reaches into `near` (indices into the segment's
    /// samples), when it lasts at least `minimumSamples`.
    func pause(near: Range<Int>) -> Range<Int>? {
        var best: Range<Int>?
        var index = 0
        while index < quiet.count {
            guard quiet[index] else { index += 1; continue }
            var end = index
            while end < quiet.count, quiet[end] { end += 1 }
            let run = index * Self.frame..<end * Self.frame
            if run.overlaps(near), run.count >= Self.minimumSamples, run.count > best?.count ?? 0 { best = run }
            index = end
        }
        return best
    }

    /// `range` (indices into the segment's samples) without the quiet frames at either end;
    /// `nil` when it holds no frame with sound.
    func audible(_ range: Range<Int>) -> Range<Int>? {
        func isQuiet(_ sample: Int) -> Bool { sample / Self.frame < quiet.count && quiet[sample / Self.frame] }
        var lower = range.lowerBound
        while lower < range.upperBound, isQuiet(lower) { lower = (lower / Self.frame + 1) * Self.frame }
        var upper = range.upperBound
        while upper > lower, isQuiet(upper - 1) { upper = (upper - 1) / Self.frame * Self.frame }
        return lower < upper ? lower..<upper : nil
    }
}
