import Foundation

/// Token start times from the alignment heads' cross-attention, by dynamic time warping, as
/// sherpa-onnx computes them (after OpenAI's timing.py): each head's rows softmaxed over the
/// speech frames, normalised per frame across tokens, median-filtered over 7 frames, averaged
/// over heads; then the cheapest monotonic path through the negated matrix, and each token starts
/// where the path enters the row before it (the first row is the piece's first timestamp token).
enum WhisperAlignment {
    /// Seconds an encoder frame stands for.
    static let secondsPerFrame = 0.02

    /// - Parameters:
    ///   - rows: one attention row per fed decoded token, each [heads × frames] (head-major).
    ///   - frames: the frames of each head in a row; only the first `speechFrames` are used.
    ///   - isTime: whether each row's token is a timestamp token (all but the first are left out).
    /// - Returns: the start of each text (non-timestamp) token, in seconds; empty when there is
    ///   too little to align.
    static func tokenStarts(rows: [[Float16]], heads: Int, frames: Int, speechFrames: Int, isTime: [Bool]) -> [Double] {
        let textCount = isTime.filter { !$0 }.count
        let kept = rows.indices.filter { index in !isTime[index] || index == isTime.firstIndex(of: true) }
        let width = min(frames, max(speechFrames, 1))
        guard heads > 0, kept.count > 1, textCount > 0, width > 0 else { return [] }
        let count = kept.count
        var averaged = [Float](repeating: 0, count: count * width)
        var head = [Float](repeating: 0, count: count * width)
        for h in 0..<heads {
            for (row, index) in kept.enumerated() {
                let source = rows[index]
                var largest = -Float.infinity
                for f in 0..<width { largest = max(largest, Float(source[h * frames + f])) }
                var sum: Float = 0
                for f in 0..<width {
                    let value = expf(Float(source[h * frames + f]) - largest)
                    head[row * width + f] = value
                    sum += value
                }
                if sum > 0 { for f in 0..<width { head[row * width + f] /= sum } }
            }
            for f in 0..<width {
                var mean: Float = 0
                for row in 0..<count { mean += head[row * width + f] }
                mean /= Float(count)
                var variance: Float = 0
                for row in 0..<count { variance += (head[row * width + f] - mean) * (head[row * width + f] - mean) }
                let deviation = (variance / Float(count) + 1e-9).squareRoot()
                for row in 0..<count { head[row * width + f] = (head[row * width + f] - mean) / deviation }
            }
            medianFiltered(&head, rows: count, width: width, span: 7)
            for i in 0..<(count * width) { averaged[i] += head[i] / Float(heads) }
        }
        let jumps = pathEntries(cost: averaged.map { -$0 }, rows: count, columns: width)
        return (0..<textCount).map { index in
            Double(index < jumps.count ? jumps[index] : jumps.last ?? 0) * secondsPerFrame
        }
    }

    /// Each row's median over `span` frames, reflected at the edges.
    private static func medianFiltered(_ data: inout [Float], rows: Int, width: Int, span: Int) {
        guard width > 1 else { return }
        let half = span / 2
        var window = [Float](repeating: 0, count: span)
        for row in 0..<rows {
            let original = Array(data[(row * width)..<((row + 1) * width)])
            for f in 0..<width {
                var n = 0
                for k in -half...half {
                    var source = f + k
                    if source < 0 { source = -source } else if source >= width { source = 2 * width - 2 - source }
                    window[n] = original[min(max(source, 0), width - 1)]
                    n += 1
                }
                window[0..<n].sort()
                data[row * width + f] = window[n / 2]
            }
        }
    }

    /// The frame where the cheapest monotonic path (diagonal, down, right) through `cost`
    /// [rows × columns] first reaches each row.
    static func pathEntries(cost: [Float], rows: Int, columns: Int) -> [Int] {
        let stride = columns + 1
        var total = [Float](repeating: .infinity, count: (rows + 1) * stride)
        var trace = [UInt8](repeating: 0, count: (rows + 1) * stride)
        total[0] = 0
        for j in 1...columns {
            for i in 1...rows {
                let diagonal = total[(i - 1) * stride + j - 1], up = total[(i - 1) * stride + j], left = total[i * stride + j - 1]
                let (best, direction): (Float, UInt8) = diagonal <= up && diagonal <= left ? (diagonal, 0) : up <= left ? (up, 1) : (left, 2)
                total[i * stride + j] = cost[(i - 1) * columns + j - 1] + best
                trace[i * stride + j] = direction
            }
        }
        for j in 0...columns { trace[j] = 2 }
        for i in 0...rows { trace[i * stride] = 1 }
        var path: [(row: Int, column: Int)] = []
        var (i, j) = (rows, columns)
        while i > 0 || j > 0 {
            path.append((i - 1, j - 1))
            switch trace[i * stride + j] {
            case 0: i -= 1; j -= 1
            case 1: i -= 1
            default: j -= 1
            }
        }
        var entries: [Int] = []
        var previous = -1
        for step in path.reversed() where step.row >= 0 && step.column >= 0 {
            if entries.isEmpty || step.row != previous { entries.append(step.column) }
            previous = step.row
        }
        return entries
    }
}
