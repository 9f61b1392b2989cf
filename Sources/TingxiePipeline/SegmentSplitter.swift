import TingxieAudio
import TingxieCore

/// Cuts speech segments that are longer than a model should see into pieces, each cut at
/// the quietest moment near the limit so that words are not split.
public struct SegmentSplitter: Sendable {
    public let maxSamples: Int
    /// Cuts are looked for in the last part of each piece: from this fraction of the limit on.
    public let searchFrom: Double
    /// Energy is compared over frames of this many samples (20 ms at 16 kHz).
    static let frame = 320

    public init(maxSeconds: Double, searchFrom: Double = 0.6) {
        maxSamples = max(Self.frame * 4, Int(maxSeconds * Double(modelSampleRate)))
        self.searchFrom = searchFrom
    }

    public func split(_ segment: SpeechSegment) -> [SpeechSegment] {
        var pieces: [SpeechSegment] = []
        var start = 0
        let samples = segment.samples
        while samples.count - start > maxSamples {
            let cut = quietestCut(samples, from: start + Int(Double(maxSamples) * searchFrom), to: start + maxSamples)
            pieces.append(SpeechSegment(startSample: segment.startSample + start, samples: Array(samples[start..<cut]),
                                        leadSamples: start == 0 ? segment.leadSamples : 0))
            start = cut
        }
        pieces.append(SpeechSegment(startSample: segment.startSample + start, samples: Array(samples[start...]),
                                    leadSamples: start == 0 ? segment.leadSamples : 0))
        return pieces
    }

    /// The start of the lowest-energy frame in `lower..<upper`.
    private func quietestCut(_ samples: [Float], from lower: Int, to upper: Int) -> Int {
        var best = upper
        var bestEnergy = Float.infinity
        var position = lower
        while position + Self.frame <= upper {
            var energy: Float = 0
            for i in position..<(position + Self.frame) { energy += samples[i] * samples[i] }
            if energy < bestEnergy {
                bestEnergy = energy
                best = position + Self.frame / 2
            }
            position += Self.frame / 2
        }
        return best
    }
}
