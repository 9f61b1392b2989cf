import Foundation

/// Audio that arrives from elsewhere (a WebSocket) while a reader on another thread consumes it:
/// `nextChunk` blocks until samples are pushed or the stream ends. Samples are converted to
/// 16 kHz on the way in.
///
/// The buffer is bounded: `push` waits while `capacity` samples are waiting to be read, so a
/// client that sends faster than recognition runs is slowed down (its socket is not read)
/// instead of filling memory. Chunks leave in O(1).
public final class PushedAudioSource: AudioSource, @unchecked Sendable {
    // @unchecked: every stored property is read and written under `condition`.
    private let condition = NSCondition()
    private var chunks: [[Float]] = []
    /// Index of the next chunk to hand out; chunks before it are spent.
    private var head = 0
    private var buffered = 0
    private var ended = false
    private var resampler: Resampler?
    /// A `push` waiting for room, resumed once the reader has taken enough or the stream ended.
    private var waiter: CheckedContinuation<Void, Never>?
    /// Samples (at 16 kHz) pushed so far.
    public private(set) var pushedSamples = 0
    /// Samples (at 16 kHz) that may wait to be read before `push` waits.
    public let capacity: Int

    public var duration: Double? { nil }

    /// - Parameter bufferSeconds: audio that may wait to be read (default 10 s).
    public init(sampleRate: Int, bufferSeconds: Double = 10) {
        resampler = sampleRate == modelSampleRate ? nil : Resampler(inputRate: sampleRate, outputRate: modelSampleRate)
        capacity = max(modelSampleRate, Int(bufferSeconds * Double(modelSampleRate)))
    }

    /// Adds samples at the source's own rate, then waits while the buffer is full. Ignored once
    /// the stream ended.
    public func push(_ samples: [Float]) async {
        let full = condition.withLock {
            guard !ended else { return false }
            let converted = resampler?.process(samples) ?? samples
            pushedSamples += converted.count
            buffered += converted.count
            chunks.append(converted)
            condition.signal()
            return buffered >= capacity
        }
        guard full else { return }
        await withCheckedContinuation { continuation in
            let resumeNow = condition.withLock {
                if ended || buffered < capacity { return true }
                waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Marks the end: the reader gets what is left, then `nil`.
    public func end() {
        let waiting = condition.withLock { () -> CheckedContinuation<Void, Never>? in
            guard !ended else { return nil }
            if let tail = resampler?.flush(), !tail.isEmpty {
                chunks.append(tail)
                buffered += tail.count
            }
            ended = true
            condition.broadcast()
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume()
    }

    /// Seconds of audio pushed so far.
    public var pushedSeconds: Double { condition.withLock { Double(pushedSamples) / Double(modelSampleRate) } }

    /// Seconds of audio waiting to be read.
    public var bufferedSeconds: Double { condition.withLock { Double(buffered) / Double(modelSampleRate) } }

    public func nextChunk() throws -> [Float]? {
        let (chunk, waiting) = condition.withLock { () -> ([Float]?, CheckedContinuation<Void, Never>?) in
            while head == chunks.count && !ended { condition.wait() }
            guard head < chunks.count else { return (nil, nil) }
            let chunk = chunks[head]
            chunks[head] = []
            head += 1
            buffered -= chunk.count
            // Spent slots are dropped once they are the larger part of the array.
            if head > 64, head * 2 > chunks.count {
                chunks.removeFirst(head)
                head = 0
            }
            guard buffered < capacity, let waiting = waiter else { return (chunk, nil) }
            waiter = nil
            return (chunk, waiting)
        }
        waiting?.resume()
        return chunk
    }

    public func close() {
        end()
    }
}
