import Foundation

/// Audio that arrives from elsewhere (a WebSocket) while a reader on another thread consumes it:
/// `nextChunk` blocks until samples are pushed or the stream ends. Samples are converted to
/// 16 kHz on the way in.
public final class PushedAudioSource: AudioSource, @unchecked Sendable {
    // @unchecked: every stored property is read and written under `condition`.
    private let condition = NSCondition()
    private var chunks: [[Float]] = []
    private var ended = false
    private var resampler: Resampler?
    /// Samples (at 16 kHz) pushed so far.
    public private(set) var pushedSamples = 0

    public var duration: Double? { nil }

    public init(sampleRate: Int) {
        resampler = sampleRate == modelSampleRate ? nil : Resampler(inputRate: sampleRate, outputRate: modelSampleRate)
    }

    /// Adds samples at the source's own rate; ignored once the stream ended.
    public func push(_ samples: [Float]) {
        condition.withLock {
            guard !ended else { return }
            let converted = resampler?.process(samples) ?? samples
            pushedSamples += converted.count
            chunks.append(converted)
            condition.signal()
        }
    }

    /// Marks the end: the reader gets what is left, then `nil`.
    public func end() {
        condition.withLock {
            guard !ended else { return }
            if let tail = resampler?.flush(), !tail.isEmpty { chunks.append(tail) }
            ended = true
            condition.broadcast()
        }
    }

    /// Seconds of audio pushed so far.
    public var pushedSeconds: Double { condition.withLock { Double(pushedSamples) / Double(modelSampleRate) } }

    public func nextChunk() throws -> [Float]? {
        condition.withLock {
            while chunks.isEmpty && !ended { condition.wait() }
            return chunks.isEmpty ? nil : chunks.removeFirst()
        }
    }

    public func close() {
        end()
    }
}
