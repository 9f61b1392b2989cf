import TingxieAudio

/// Pauses inside a stretch of speech, by frame energy: where a sentence the VAD heard together
/// with the next one (the pause between them shorter than its minimum silence) ends.
enum Pauses {
    /// Energy is compared over frames of this many samples (20 ms).
    static let frame = 320
    /// A frame is quiet below this share of the energy of the segment's loud frames (its 90th
    /// percentile): about 17 dB down, under the noise of a recording at 20 dB SNR.
    static let quietShare: Float = 0.02
    /// The shortest pause that ends a sentence: half the VAD's minimum silence (0.6 s). Pauses
    /// between the clauses of one sentence are mostly shorter.
    static let minimumSamples = 3 * modelSampleRate / 10

    /// The longest run of quiet frames of `samples` that reaches into `near` (indices into
    /// `samples`), when it lasts at least `minimumSamples`.
    static func pause(in samples: [Float], near: Range<Int>) -> Range<Int>? {
        let energies = stride(from: 0, to: samples.count - frame + 1, by: frame).map { start in
            samples[start..<start + frame].reduce(Float(0)) { $0 + $1 * $1 } / Float(frame)
        }
        guard energies.count > 2 else { return nil }
        let loud = energies.sorted()[energies.count * 9 / 10]
        let quiet = energies.map { $0 < loud * quietShare }
        var best: Range<Int>?
        var index = 0
        while index < quiet.count {
            guard quiet[index] else { index += 1; continue }
            var end = index
            while end < quiet.count, quiet[end] { end += 1 }
            let run = index * frame..<end * frame
            if run.overlaps(near), run.count >= minimumSamples, run.count > best?.count ?? 0 { best = run }
            index = end
        }
        return best
    }
}
