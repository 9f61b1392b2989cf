import Foundation
import Synchronization
import Testing
import TingxieCore
import TingxieServer

/// Records how many pieces each call may decode side by side, and can hold calls until released.
final class ParallelRecorder: Recognizer {
    let info: ModelInfo
    /// The `parallel` of each call, with its batch size.
    let calls = Mutex<[(pieces: Int, parallel: Int)]>([])
    /// Calls whose batch holds a piece this long (in samples) wait until `release` is signalled.
    let holdLength: Int?
    let release = DispatchSemaphore(value: 0)
    let held = Atomic<Int>(0)

    /// - Parameter batchPieces: 1 for a recogniser that decodes a call's pieces one after another,
    ///   more for a batch decoder.
    init(holdLength: Int? = nil, batchPieces: Int = 1) {
        self.holdLength = holdLength
        info = ModelInfo(family: "fake", name: "parallel-recorder", emitsTraditional: false, maxSegmentSeconds: 10, batchPieces: batchPieces)
    }

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        try recognize(batch: batch, hotwords: hotwords, options: options, parallel: 1)
    }

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions, parallel: Int) throws -> [RecognitionResult] {
        calls.withLock { $0.append((batch.count, parallel)) }
        if let holdLength, batch.contains(where: { $0.count == holdLength }) {
            held.add(1, ordering: .relaxed)
            release.wait()
        }
        return batch.map { RecognitionResult(text: "段\($0.count)") }
    }
}

@Suite struct BorrowedSlotsTests {
    /// A batch takes one slot and borrows the free ones, one per further piece, giving them back after.
    @Test func aBatchBorrowsTheSlotsNobodyHolds() async throws {
        let base = ParallelRecorder(holdLength: 7)
        let shared = SharedRecognizer(base, limit: 3)
        _ = try shared.recognize(batch: [[0], [0], [0], [0]])
        _ = try shared.recognize(batch: [[0], [0]])
        _ = try shared.recognize(batch: [[0]])
        #expect(base.calls.withLock { $0.map(\.parallel) } == [3, 2, 1])
        // A call that holds a slot leaves two to the next batch.
        let holder = Task.detached { _ = try shared.recognize(batch: [[Float](repeating: 0, count: 7)]) }
        for _ in 0..<500 where base.held.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(base.held.load(ordering: .relaxed) == 1)
        _ = try shared.recognize(batch: [[0], [0], [0], [0]])
        base.release.signal()
        try await holder.value
        // Every slot came back.
        _ = try shared.recognize(batch: [[0], [0], [0]])
        #expect(base.calls.withLock { $0.suffix(3).map(\.parallel) } == [1, 2, 3])
    }

    /// A batch decoder decodes a call's pieces together on one slot: it borrows none, so the
    /// other slots stay free for other work (a live partial gets one meanwhile).
    @Test func aBatchDecoderBorrowsNoSlot() async throws {
        let base = ParallelRecorder(holdLength: 7, batchPieces: 4)
        let shared = SharedRecognizer(base, limit: 3)
        let holder = Task.detached { _ = try shared.recognize(batch: [[Float](repeating: 0, count: 7), [0], [0]]) }
        for _ in 0..<500 where base.held.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(base.held.load(ordering: .relaxed) == 1)
        #expect(try shared.recognizeIfIdle(batch: [[0]], hotwords: [], options: RecognitionOptions()) != nil)
        base.release.signal()
        try await holder.value
        #expect(base.calls.withLock { $0.map(\.parallel) } == [1, 1])
    }

    /// In the server a lone job decodes its pieces in batches of as many as there are workers,
    /// side by side on the idle worker's slot; its transcript keeps every piece in order.
    @Test func aLoneJobUsesTheIdleWorkersSlot() async throws {
        let recognizer = ParallelRecorder()
        try await withTestServer(recognizer: recognizer, setup: { $0.workers.workers = 2 }) { client, _ in
            // Five bursts of 0.5 to 0.9 s, each its own segment for the fake VAD.
            var samples: [Double] = []
            for length in [0.5, 0.6, 0.7, 0.8, 0.9] {
                samples += [Double](repeating: 0, count: 4000)
                samples += WAVFixture.sine(frequency: 300, seconds: length, sampleRate: 16_000, amplitude: 0.3)
            }
            samples += [Double](repeating: 0, count: 4000)
            let id = try await client.submit(WAVFixture.file(samples, sampleRate: 16_000))
            let job = try await client.waitUntilFinished(id)
            #expect(job["status"] as? String == "succeeded")
            let calls = recognizer.calls.withLock { $0 }
            #expect(calls.map(\.pieces) == [2, 2, 1], "\(calls)")
            #expect(calls.filter { $0.pieces == 2 }.allSatisfy { $0.parallel == 2 }, "\(calls)")
            let transcript = try await client.get("/v1/jobs/\(id)/transcript").json
            let segments = try #require(transcript["segments"] as? [[String: Any]])
            #expect(segments.count == 5)
            let starts = segments.compactMap { $0["start"] as? Double }
            #expect(starts == starts.sorted() && starts.count == 5, "\(starts)")
        }
    }
}
