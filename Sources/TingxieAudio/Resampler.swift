import Foundation

/// Streaming band-limited resampler (windowed sinc, exact polyphase for integer rates).
///
/// Feed it chunks of any size with `process` and call `flush` once at the end; the output
/// is the same as resampling the whole signal at once.
public struct Resampler {
    public let inputRate: Int
    public let outputRate: Int
    /// Output rate / gcd and input rate / gcd: output sample n sits at input position n*down/up.
    private let up: Int
    private let down: Int
    /// Filter half-width in input samples at the lower of the two rates.
    private let halfWidth: Int
    /// `taps[phase]` are the weights of inputs `p - halfWidth + 1 ... p + halfWidth`.
    private let taps: [[Float]]
    /// Input not yet fully used; `history[0]` is absolute input sample `historyStart`.
    private var history: [Float] = []
    private var historyStart = 0
    private var nextOutput = 0
    private var inputCount = 0

    public init(inputRate: Int, outputRate: Int, zeroCrossings: Int = 16) {
        precondition(inputRate > 0 && outputRate > 0, "sample rates must be positive")
        self.inputRate = inputRate
        self.outputRate = outputRate
        let divisor = Self.gcd(inputRate, outputRate)
        up = outputRate / divisor
        down = inputRate / divisor
        // When downsampling, the filter stretches so that its cutoff sits at the output's Nyquist.
        let cutoff = min(1.0, Double(outputRate) / Double(inputRate)) * 0.97
        halfWidth = Int((Double(zeroCrossings) / cutoff).rounded(.up))
        let beta = 8.0
        let besselBeta = Self.besselI0(beta)
        var taps: [[Float]] = []
        taps.reserveCapacity(up)
        for phase in 0..<up {
            let fraction = Double(phase) / Double(up)
            var row = [Float](repeating: 0, count: 2 * halfWidth)
            var sum = 0.0
            var weights = [Double](repeating: 0, count: 2 * halfWidth)
            for j in 0..<(2 * halfWidth) {
                // Distance from the output position to input sample p - halfWidth + 1 + j.
                let x = fraction + Double(halfWidth - 1 - j)
                let ratio = x / Double(halfWidth)
                guard abs(ratio) < 1 else { continue }
                let window = Self.besselI0(beta * (1 - ratio * ratio).squareRoot()) / besselBeta
                let argument = Double.pi * cutoff * x
                let sinc = argument == 0 ? 1 : sin(argument) / argument
                weights[j] = cutoff * sinc * window
                sum += weights[j]
            }
            for j in 0..<(2 * halfWidth) { row[j] = Float(weights[j] / sum) }
            taps.append(row)
        }
        self.taps = taps
    }

    /// Resamples the next chunk of input; returns the output that is now complete.
    public mutating func process(_ input: [Float]) -> [Float] {
        if up == down { return input }
        history.append(contentsOf: input)
        inputCount += input.count
        return produce(available: historyStart + history.count)
    }

    /// Ends the stream and returns the remaining output.
    public mutating func flush() -> [Float] {
        if up == down { return [] }
        let total = Int((Double(inputCount) * Double(up) / Double(down)).rounded(.up))
        history.append(contentsOf: [Float](repeating: 0, count: halfWidth + 1))
        var output = produce(available: historyStart + history.count)
        if nextOutput > total { output.removeLast(min(output.count, nextOutput - total)) }
        history.removeAll()
        return output
    }

    private mutating func produce(available: Int) -> [Float] {
        var output: [Float] = []
        output.reserveCapacity(Int(Double(available - historyStart) * Double(up) / Double(down)) + 1)
        history.withUnsafeBufferPointer { samples in
            while true {
                let position = nextOutput * down
                let p = position / up
                let phase = position % up
                guard p + halfWidth < available else { break }
                let first = p - halfWidth + 1
                let row = taps[phase]
                var acc: Float = 0
                for j in 0..<(2 * halfWidth) {
                    let index = first + j - historyStart
                    if index >= 0 { acc += row[j] * samples[index] }
                }
                output.append(acc)
                nextOutput += 1
            }
        }
        // Drop input no future output can reach.
        let keepFrom = (nextOutput * down) / up - halfWidth + 1
        if keepFrom > historyStart {
            let drop = min(keepFrom - historyStart, history.count)
            history.removeFirst(drop)
            historyStart += drop
        }
        return output
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// Modified Bessel function of the first kind, order 0 (for the Kaiser window).
    private static func besselI0(_ x: Double) -> Double {
        var sum = 1.0, term = 1.0, k = 1.0
        while term > 1e-12 * sum {
            term *= (x / (2 * k)) * (x / (2 * k))
            sum += term
            k += 1
        }
        return sum
    }
}
