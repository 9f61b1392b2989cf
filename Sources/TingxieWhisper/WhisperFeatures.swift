import Foundation

/// Whisper's log-mel spectrogram as sherpa-onnx computes it (kaldi-native-fbank's Whisper
/// features, then sherpa-onnx's normalisation), so that Tingxie's decoder sees what the
/// sherpa-onnx path sees: 25-ms frames every 10 ms centred on the shift (edges reflected), a
/// periodic Hann window, the power of a 400-point DFT, librosa's Slaney mel filters, then
/// `log10(max(x, 1e-10))` floored at the piece's maximum − 8 and mapped by `(x + 4) / 4`.
public struct WhisperFeatures: Sendable {
    public let mels: Int
    static let frameLength = 400, shift = 160, sampleRate = 16_000
    private let window: [Float]
    /// Each mel filter's first DFT bin and weights.
    private let filters: [(first: Int, weights: [Float])]
    private let fourier: FourierTransform

    public init(mels: Int = 80) {
        self.mels = mels
        let n = Self.frameLength
        window = (0..<n).map { Float(0.5 - 0.5 * cos(2 * Double.pi / Double(n) * Double($0))) }
        filters = Self.slaneyFilters(mels: mels, bins: n / 2 + 1)
        fourier = FourierTransform(size: n)
    }

    /// Frames `samples` (16 kHz) give: one every 10 ms, rounded to the nearest.
    public static func frameCount(_ samples: Int) -> Int { (samples + shift / 2) / shift }

    /// The normalised log-mel of `samples` (its first `limit` frames at most), [mels, frames] (the
    /// encoder's layout), followed by `padding` frames of zeros.
    public func logMel(_ samples: [Float], limit: Int = .max, padding: Int = 0) -> [Float] {
        let frames = min(Self.frameCount(samples.count), limit)
        guard frames > 0 else { return Array(repeating: 0, count: mels * padding) }
        var energies = [Float](repeating: 0, count: frames * mels)  // [frames, mels]
        var frame = [Float](repeating: 0, count: Self.frameLength)
        var spectrum = [Float](repeating: 0, count: 2 * Self.frameLength)
        var power = [Float](repeating: 0, count: Self.frameLength / 2 + 1)
        for index in 0..<frames {
            let start = index * Self.shift + Self.shift / 2 - Self.frameLength / 2
            for s in 0..<Self.frameLength {
                frame[s] = samples[Self.reflected(start + s, count: samples.count)] * window[s]
            }
            fourier.transform(frame, into: &spectrum)
            for bin in 0..<power.count {
                power[bin] = spectrum[2 * bin] * spectrum[2 * bin] + spectrum[2 * bin + 1] * spectrum[2 * bin + 1]
            }
            for (mel, filter) in filters.enumerated() {
                var energy: Float = 0
                for (k, weight) in filter.weights.enumerated() { energy += weight * power[filter.first + k] }
                energies[index * mels + mel] = log10(max(energy, 1e-10))
            }
        }
        let floor = (energies.max() ?? 0) - 8
        let width = frames + padding
        var out = [Float](repeating: 0, count: mels * width)
        for index in 0..<frames {
            for mel in 0..<mels { out[mel * width + index] = (max(energies[index * mels + mel], floor) + 4) / 4 }
        }
        return out
    }

    /// Kaldi's reflection at the edges: -1 → 0, count → count - 1.
    private static func reflected(_ index: Int, count: Int) -> Int {
        var i = index
        while i < 0 || i >= count { i = i < 0 ? -i - 1 : 2 * count - 1 - i }
        return i
    }

    /// librosa's mel filters (Slaney scale and area normalisation) over `bins` DFT bins of 0–8 kHz.
    private static func slaneyFilters(mels: Int, bins: Int) -> [(first: Int, weights: [Float])] {
        func mel(_ hz: Float) -> Float { hz <= 1000 ? hz * 3 / 200 : 15 + 14.545078505785561 * logf(hz / 1000) }
        func hz(_ mel: Float) -> Float { mel <= 15 ? 200 / 3 * mel : 1000 * expf((mel - 15) * 0.06875177742094911) }
        let low = mel(0), high = mel(Float(sampleRate) / 2)
        let delta = (high - low) / Float(mels + 1)
        let binWidth = Float(sampleRate) / Float(frameLength)
        return (0..<mels).map { index in
            let left = hz(low + Float(index) * delta), center = hz(low + Float(index + 1) * delta), right = hz(low + Float(index + 2) * delta)
            var first = -1
            var weights: [Float] = []
            for bin in 0..<bins {
                let frequency = binWidth * Float(bin)
                guard frequency > left, frequency < right else { continue }
                let rising = frequency <= center
                let weight = (rising ? (frequency - left) / (center - left) : (right - frequency) / (right - center)) * 2 / (right - left)
                if first < 0 { first = bin }
                weights += Array(repeating: 0, count: bin - first - weights.count) + [weight]
            }
            return (max(first, 0), weights)
        }
    }
}

/// A discrete Fourier transform of real input whose size is a power of two times an odd number,
/// as kaldi-native-fbank's: halved (even and odd samples) down to the odd size, which is
/// transformed directly.
struct FourierTransform: Sendable {
    let size: Int
    private let oddSize: Int
    /// cos and −sin of 2π·k·n / oddSize, [k][n].
    private let oddCos: [Float], oddSin: [Float]
    /// cos and −sin of 2π·k / count for k < count / 2, for count = size, size / 2, … (one a level).
    private let twiddles: [(cos: [Float], sin: [Float])]

    init(size: Int) {
        self.size = size
        var odd = size
        while odd % 2 == 0 && odd > 1 { odd /= 2 }
        oddSize = odd
        var c = [Float](repeating: 0, count: odd * odd), s = c
        for k in 0..<odd {
            for n in 0..<odd {
                let angle = 2 * Double.pi / Double(odd) * Double(k * n)
                c[k * odd + n] = Float(cos(angle))
                s[k * odd + n] = Float(-sin(angle))
            }
        }
        oddCos = c
        oddSin = s
        twiddles = sequence(first: size) { $0 / 2 }.prefix { $0 > odd }.map { count in
            ((0..<(count / 2)).map { Float(cos(2 * Double.pi * Double($0) / Double(count))) },
             (0..<(count / 2)).map { Float(-sin(2 * Double.pi * Double($0) / Double(count))) })
        }
    }

    /// `out` [2·size]: the real and imaginary parts of each bin.
    func transform(_ input: [Float], into out: inout [Float]) {
        input.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in
                var scratch = [Float](repeating: 0, count: 2 * size)
                scratch.withUnsafeMutableBufferPointer { s in
                    transform(x.baseAddress!, stride: 1, count: size, level: 0, out: y.baseAddress!, scratch: s.baseAddress!)
                }
            }
        }
    }

    /// Transforms `count` samples of `x` spaced `stride` apart into `out` [2·count].
    private func transform(_ x: UnsafePointer<Float>, stride: Int, count: Int, level: Int, out: UnsafeMutablePointer<Float>,
                           scratch: UnsafeMutablePointer<Float>) {
        if count == oddSize {
            for k in 0..<count {
                var re: Float = 0, im: Float = 0
                for n in 0..<count {
                    let sample = x[n * stride]
                    re += sample * oddCos[k * count + n]
                    im += sample * oddSin[k * count + n]
                }
                out[2 * k] = re
                out[2 * k + 1] = im
            }
            return
        }
        let half = count / 2
        // The even samples' transform in scratch[0..<count], the odd ones' in scratch[count..<2·count].
        transform(x, stride: 2 * stride, count: half, level: level + 1, out: scratch, scratch: out)
        transform(x + stride, stride: 2 * stride, count: half, level: level + 1, out: scratch + count, scratch: out)
        let (cosines, sines) = twiddles[level]
        for k in 0..<half {
            let re = cosines[k], im = sines[k]
            let oddRe = scratch[count + 2 * k], oddIm = scratch[count + 2 * k + 1]
            let evenRe = scratch[2 * k], evenIm = scratch[2 * k + 1]
            out[2 * k] = evenRe + re * oddRe - im * oddIm
            out[2 * k + 1] = evenIm + re * oddIm + im * oddRe
            out[2 * (k + half)] = evenRe - re * oddRe + im * oddIm
            out[2 * (k + half) + 1] = evenIm - re * oddIm - im * oddRe
        }
    }
}
