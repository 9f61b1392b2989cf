import Foundation
import Synchronization
import Testing
import TingxieAudio
import TingxieCore
import TingxieOperations
@testable import TingxiePipeline
import TingxieSherpa

/// A recogniser that names each piece by its length and records what it was given.
final class FakeRecognizer: Recognizer {
    let info: ModelInfo
    let calls = Mutex<[[Int]]>([])
    /// The options of each call.
    let options = Mutex<[RecognitionOptions]>([])
    let delay: Duration
    let failure: TingxieError?
    let timestamps: Timestamps
    /// Stretches stop this many seconds into a piece: later ones are left out and one that runs
    /// over is cut there (a decoder that ends its window early).
    let stopsAt: Double?
    /// Bursts with samples louder than this give no stretch (speech the model cannot make out).
    let inaudibleAbove: Float?
    /// In a piece of three bursts or more, the second gives no stretch (a decoder that jumps its timestamps).
    let skipsSecond: Bool

    /// What results carry besides the text.
    enum Timestamps {
        /// The piece's length as its text, with a token every half second from 0.25 s on (one
        /// at least): text that covers the whole piece.
        case none
        /// One token per burst of sound, timed at the burst's start, as Paraformer gives them.
        case tokens
        /// One timed stretch of text per burst, from its start to its end, as Whisper's
        /// timestamp tokens give them (and no token times).
        case stretches
        /// Said to give timed stretches, but gives only text (one token per piece).
        case promisedButNone
    }

    /// - Parameters:
    ///   - timestamps: what the results carry to tell bursts apart.
    ///   - failure: thrown by every call, when given.
    ///   - multilingual: speaks zh, en and ja, detects (finding `en`) and translates ("Piece N"),
    ///     as a multilingual Whisper does.
    init(delay: Duration = .zero, timestamps: Timestamps = .none, failure: TingxieError? = nil, multilingual: Bool = false,
         stopsAt: Double? = nil, inaudibleAbove: Float? = nil, skipsSecond: Bool = false) {
        self.delay = delay
        self.skipsSecond = skipsSecond
        self.stopsAt = stopsAt
        self.inaudibleAbove = inaudibleAbove
        self.failure = failure
        self.timestamps = timestamps
        info = ModelInfo(family: "fake", name: "fake", emitsTraditional: false, maxSegmentSeconds: 10,
                         givesTokenTimestamps: timestamps == .tokens, givesSegmentTimestamps: timestamps == .stretches || timestamps == .promisedButNone,
                         languages: multilingual ? ["zh", "en", "ja"] : ["zh"], detectsLanguage: multilingual, translates: multilingual)
    }

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        try info.check(options)
        calls.withLock { $0.append(batch.map(\.count)) }
        self.options.withLock { $0.append(options) }
        if delay > .zero { Thread.sleep(forTimeInterval: delay.seconds) }
        if let failure { throw failure }
        if info.translates {
            let language = options.language.map { $0 == ModelInfo.detect ? "en" : $0 } ?? info.languages[0]
            return batch.map { RecognitionResult(text: options.task == .translate ? "Piece \($0.count)" : "段\($0.count)", language: language) }
        }
        if timestamps == .tokens {
            return batch.map { samples in
                let starts = Self.bursts(samples).map(\.start)
                let tokens = starts.indices.map { "词\($0)" }
                return RecognitionResult(text: tokens.joined(), tokens: tokens, timestamps: starts)
            }
        }
        if timestamps == .stretches {
            return batch.map { samples in
                let bursts = Self.bursts(samples)
                let stretches = bursts.enumerated().compactMap { index, burst -> TimedText? in
                    if skipsSecond, index == 1, bursts.count >= 3 { return nil }
                    let end = min(burst.end, stopsAt ?? .infinity)
                    if burst.start >= end { return nil }
                    if let inaudibleAbove, samples[Int(burst.start * 16_000)..<Int(burst.end * 16_000)].contains(where: { abs($0) > inaudibleAbove }) {
                        return nil
                    }
                    return TimedText(text: "句\(index)。", start: burst.start, end: end)
                }
                return RecognitionResult(text: stretches.map(\.text).joined(), tokens: ["句"], segments: stretches)
            }
        }
        if timestamps == .promisedButNone {
            return batch.map { RecognitionResult(text: "段\($0.count)") }
        }
        return batch.map { samples in
            let times = Array(stride(from: 0.25, to: max(0.26, Double(samples.count) / 16_000), by: 0.5))
            return RecognitionResult(text: "段\(samples.count)", tokens: times.map { _ in "段" }, timestamps: times)
        }
    }

    /// Runs of non-zero samples separated by at least 0.2 s of zeros, in seconds.
    static func bursts(_ samples: [Float]) -> [(start: Double, end: Double)] {
        var bursts: [(start: Double, end: Double)] = []
        var silent = 3200
        for (index, sample) in samples.enumerated() {
            if sample != 0 {
                if silent >= 3200 { bursts.append((Double(index) / 16_000, 0)) }
                bursts[bursts.count - 1].end = Double(index + 1) / 16_000
                silent = 0
            } else {
                silent += 1
            }
        }
        return bursts
    }

    var pieceLengths: [Int] { calls.withLock { $0.flatMap { $0 } } }
}

/// Speech is any run of non-zero samples; `minSilence` samples of exact zeros (0.1 s unless
/// told) end it.
struct FakeVAD: VoiceActivityDetector, VoiceActivityDetectorFactory {
    var minSilence = 1600
    var position = 0
    var open: SpeechSegment?
    var silentRun = 0

    func makeDetector() throws -> any VoiceActivityDetector { FakeVAD(minSilence: minSilence) }

    var openSpeechSamples: Int { open?.samples.count ?? 0 }

    mutating func accept(_ samples: [Float]) throws -> [SpeechSegment] {
        var done: [SpeechSegment] = []
        for sample in samples {
            if sample != 0 {
                if open == nil { open = SpeechSegment(startSample: position, samples: []) }
                open!.samples.append(sample)
                silentRun = 0
            } else if open != nil {
                silentRun += 1
                if silentRun >= minSilence { done.append(open!); open = nil } else { open!.samples.append(sample) }
            }
            position += 1
        }
        return done
    }

    mutating func finish() throws -> [SpeechSegment] {
        defer { open = nil }
        return open.map { [$0] } ?? []
    }
}

/// Hands out samples in half-second chunks, counting what it has handed out; `atEnd` is called
/// when the reader asks past the last one.
final class CountingSource: AudioSource {
    let samples: [Float]
    let atEnd: () -> Void
    private(set) var delivered = 0

    init(_ samples: [Float], atEnd: @escaping () -> Void = {}) {
        self.samples = samples
        self.atEnd = atEnd
    }

    var duration: Double? { Double(samples.count) / Double(modelSampleRate) }

    func nextChunk() throws -> [Float]? {
        guard delivered < samples.count else {
            atEnd()
            return nil
        }
        let end = min(samples.count, delivered + modelSampleRate / 2)
        defer { delivered = end }
        return Array(samples[delivered..<end])
    }

    func close() {}
}

@Suite struct PipelineTests {
    /// `bursts` are (start, end) seconds of a 300 Hz tone in silence; those at the `loud` indices
    /// twice as loud as the others.
    func audio(seconds: Double, bursts: [(Double, Double)], loud: Set<Int> = []) -> Data {
        var samples = [Double](repeating: 0, count: Int(seconds * 16_000))
        for (index, (start, end)) in bursts.enumerated() {
            let level = loud.contains(index) ? 0.6 : 0.3
            for i in Int(start * 16_000)..<Int(end * 16_000) { samples[i] = level * sin(2 * .pi * 300 * Double(i) / 16_000) + 0.01 }
        }
        return WAVFixture.file(samples, sampleRate: 16_000)
    }

    /// `count` 1-second bursts 0.6 s apart from 1 s on: close enough to be merged.
    func spacedBursts(_ count: Int) -> [(Double, Double)] {
        (0..<count).map { index in
            let start = 1 + 1.6 * Double(index)
            return (start, start + 1)
        }
    }

    func transcribe(_ data: Data, recognizer: FakeRecognizer = FakeRecognizer(), leadSeconds: Double = 0, batchSize: Int = 4,
                    mergeTargetSeconds: Double? = nil, vad: FakeVAD = FakeVAD(), splitsAtStretches: Bool = true,
                    progress: TranscriptionPipeline.ProgressHandler? = nil) async throws -> Transcript {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("audio.wav")
        try data.write(to: url)
        return try await withThreadPool { pool in
            let pipeline = try TranscriptionPipeline(recognizer: recognizer, detectors: vad,
                                                     configuration: .init(batchSize: batchSize, paddingSeconds: 0, leadSeconds: leadSeconds,
                                                                          mergeTargetSeconds: mergeTargetSeconds, splitsAtStretches: splitsAtStretches),
                                                     threadPool: pool)
            return try await pipeline.transcribe(url, progress: progress)
        }
    }

    @Test func silenceGivesAnEmptyTranscriptWithoutCallingTheModel() async throws {
        let recognizer = FakeRecognizer()
        let transcript = try await transcribe(audio(seconds: 5, bursts: []), recognizer: recognizer)
        #expect(transcript.segments.isEmpty)
        #expect(transcript.text.isEmpty)
        #expect(transcript.durationS == 5)
        #expect(recognizer.pieceLengths.isEmpty)
    }

    @Test func segmentsCarryTimesFromTheAudiosOwnTimeline() async throws {
        let transcript = try await transcribe(audio(seconds: 12, bursts: [(1, 2.5), (5, 6), (9.25, 11)]))
        #expect(transcript.segments.count == 3)
        let expected = [(1.0, 2.5), (5.0, 6.0), (9.25, 11.0)]
        for (segment, (start, end)) in zip(transcript.segments, expected) {
            #expect(abs(segment.start - start) < 0.01)
            // The fake VAD keeps 0.1 s of trailing silence.
            #expect(abs(segment.end - end) < 0.11)
            #expect(abs((segment.timestamps?.first ?? 0) - (start + 0.25)) < 0.01)
        }
        #expect(transcript.segments.map(\.id) == [0, 1, 2])
    }

    @Test func leadInComesFromTheAudioBeforeButNotFromThePreviousSegment() async throws {
        let recognizer = FakeRecognizer()
        let transcript = try await transcribe(audio(seconds: 8, bursts: [(1, 2), (2.3, 3), (6, 7)]),
                                              recognizer: recognizer, leadSeconds: 0.5)
        // Times are the speech's own; the model sees 0.5 s more before each segment, except that
        // the fake VAD ends the first segment 0.1 s after its speech: 0.2 s are left before the second.
        #expect(transcript.segments.map { ($0.start * 100).rounded() / 100 } == [1, 2.3, 6])
        #expect(recognizer.pieceLengths.map { ($0 + 800) / 1600 } == [16, 10, 16])
    }

    @Test(arguments: [FakeRecognizer.Timestamps.tokens, .stretches])
    func shortSegmentsAreMergedAndSplitBackByTimestamps(_ timestamps: FakeRecognizer.Timestamps) async throws {
        // Twelve 1-second bursts 0.6 s apart, then one after a long pause.
        var bursts = spacedBursts(12)
        bursts.append((25, 26))
        let recognizer = FakeRecognizer(timestamps: timestamps)
        let transcript = try await transcribe(audio(seconds: 28, bursts: bursts), recognizer: recognizer, batchSize: 1)
        #expect(transcript.segments.count == 13)
        for (segment, burst) in zip(transcript.segments, bursts) {
            #expect(abs(segment.start - burst.0) < 0.01)
            if timestamps == .tokens { #expect(abs((segment.timestamps?.first ?? -1) - burst.0) < 0.01) }
        }
        // The fake names each burst by its place in the piece it was recognised in.
        let names = timestamps == .tokens ? (0..<6).map { "词\($0)" } : (0..<6).map { "句\($0)。" }
        #expect(transcript.segments.map(\.text) == names + names + [names[0]])
        // Up to 10 s (the fake model's limit) per call: 12 bursts in two calls, the last alone.
        #expect(recognizer.pieceLengths.count == 3)
        #expect(recognizer.pieceLengths.allSatisfy { $0 <= 10 * 16_000 })
    }

    /// A merged piece whose decode stops 4.5 s in: the sentences after that are decoded again,
    /// each on its own, and nothing is lost.
    @Test func speechAPieceLeavesUncoveredIsDecodedAgain() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches, stopsAt: 4.5)
        let bursts = spacedBursts(6)
        let transcript = try await transcribe(audio(seconds: 12, bursts: bursts), recognizer: recognizer, batchSize: 1)
        #expect(transcript.segments.map(\.text) == ["句0。", "句1。", "句2。", "句0。", "句0。", "句0。"])
        for (segment, burst) in zip(transcript.segments, bursts) { #expect(abs(segment.start - burst.0) < 0.01) }
        #expect(transcript.gaps == nil && transcript.warnings == nil)
        // The 9 s piece, then its last three sentences, one call each (batches of 1).
        #expect(recognizer.calls.withLock { $0.map(\.count) } == [1, 1, 1, 1])
    }

    /// A sentence decoded alone whose decode stops half way: its rest is decoded again and comes
    /// after it, timed where it was spoken.
    @Test func theRestOfASentenceDecodedAloneIsDecodedAgain() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches, stopsAt: 4)
        let transcript = try await transcribe(audio(seconds: 10, bursts: [(1, 9)]), recognizer: recognizer, mergeTargetSeconds: 0)
        #expect(transcript.segments.map(\.text) == ["句0。", "句0。"])
        // The first ends where its text stops and the second where the sound does, before the VAD's trailing silence.
        #expect(transcript.segments.map { [$0.start, $0.end].map { ($0 * 10).rounded() / 10 } } == [[1, 5], [5, 9]])
        #expect(recognizer.pieceLengths.map { ($0 + 800) / 1600 } == [81, 40])
        #expect(transcript.gaps == nil)
    }

    /// A decoder that jumps over the middle of a sentence: the skipped speech is decoded again and
    /// its text goes between the parts before and after it, each timed where it was spoken.
    @Test func speechSkippedInsideASentenceComesInItsPlace() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches, skipsSecond: true)
        let bursts = [(1.0, 2.5), (2.75, 4.25), (4.5, 6.0)]
        let transcript = try await transcribe(audio(seconds: 8, bursts: bursts), recognizer: recognizer, batchSize: 1,
                                              mergeTargetSeconds: 0, vad: FakeVAD(minSilence: 16_000))
        #expect(transcript.segments.map(\.text) == ["句0。", "句0。", "句2。"])
        let times = transcript.segments.flatMap { [$0.start, $0.end] }
        #expect(times == times.sorted() && abs(times[0] - 1) < 0.01 && abs(times[2] - 2.75) < 0.03 && abs(times[3] - 4.25) < 0.03, "\(times)")
        #expect(transcript.gaps == nil)
    }

    /// Speech that gives no text, even on its own, is a gap: listed, and warned about.
    @Test func speechThatGivesNoTextIsReportedAsAGap() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches, inaudibleAbove: 0.45)
        let bursts = [(1.0, 2.0), (2.6, 3.6), (4.2, 5.7), (6.3, 7.3)]
        let transcript = try await transcribe(audio(seconds: 9, bursts: bursts, loud: [2]), recognizer: recognizer, leadSeconds: 0.3, batchSize: 1)
        #expect(transcript.segments.map(\.text) == ["句0。", "句1。", "句3。"])
        let gap = try #require(transcript.gaps?.first)
        #expect(transcript.gaps?.count == 1)
        // The burst itself: not the 0.3 s of audio decoded either side of it, nor the VAD's trailing silence.
        #expect(abs(gap.start - bursts[2].0) < 0.01 && abs(gap.end - bursts[2].1) < 0.03, "\(gap)")
        #expect(transcript.warnings == [TranscriptionPipeline.gapWarning(transcript.gaps!)])
        #expect(transcript.warnings?.first?.contains("1 stretch of speech (1.5 s in all) gave no text") == true)
        #expect(recognizer.calls.withLock { $0.map(\.count) } == [1, 1])
        let json = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(transcript)) as? [String: Any])
        #expect((json["gaps"] as? [[String: Double]])?.count == 1)
        #expect(Incident.Cause.shortfalls(of: transcript).map(\.cause) == [.speechGap])
        var partial = transcript
        partial.warnings = ["the audio ends after 5.0 s of the 8.0 s its container declares"] + (transcript.warnings ?? [])
        #expect(Incident.Cause.shortfalls(of: partial).map(\.cause) == [.partialAudio, .speechGap])
        #expect(Incident.Cause.shortfalls(of: partial).first?.message == partial.warnings?.first)
        partial.gaps = nil
        partial.warnings = partial.warnings.map { Array($0.prefix(1)) }
        #expect(Incident.Cause.shortfalls(of: partial).map(\.cause) == [.partialAudio])
    }

    /// Sentences the VAD hears as one (it waits for 1 s of silence here) become segments of their
    /// own where a stretch of the model's text ends at a pause of 0.3 s or more; a shorter pause
    /// between stretches (0.25 s) keeps them in one sentence.
    @Test func stretchesEndingAtAPauseBecomeSentencesOfTheirOwn() async throws {
        let recognizer = FakeRecognizer(timestamps: .stretches)
        let bursts = [(1.0, 2.5), (2.9, 4.0), (4.25, 5.5), (6.0, 7.0)]
        let transcript = try await transcribe(audio(seconds: 9, bursts: bursts), recognizer: recognizer, batchSize: 1,
                                              mergeTargetSeconds: 0, vad: FakeVAD(minSilence: 16_000))
        #expect(transcript.segments.map(\.text) == ["句0。", "句1。句2。", "句3。"])
        let times = transcript.segments.map { [$0.start, $0.end].map { ($0 * 100).rounded() / 100 } }
        // Each sentence ends where its pause starts and the next one starts where it ends (in
        // 20 ms frames); the last ends with the VAD's segment.
        #expect(times.count == 3 && abs(times[0][0] - 1) < 0.01 && abs(times[0][1] - 2.5) <= 0.02 && abs(times[1][0] - 2.9) <= 0.02
                && abs(times[1][1] - 5.5) <= 0.02 && abs(times[2][0] - 6) <= 0.02, "\(times)")
        #expect(recognizer.pieceLengths.count == 1)
        let whole = try await transcribe(audio(seconds: 9, bursts: bursts), recognizer: FakeRecognizer(timestamps: .stretches), batchSize: 1,
                                         mergeTargetSeconds: 0, vad: FakeVAD(minSilence: 16_000), splitsAtStretches: false)
        #expect(whole.segments.map(\.text) == ["句0。句1。句2。句3。"])
    }

    @Test func aModelWithoutTimestampsGetsEachSegmentAlone() async throws {
        let recognizer = FakeRecognizer()
        let bursts = spacedBursts(6)
        let transcript = try await transcribe(audio(seconds: 12, bursts: bursts), recognizer: recognizer, batchSize: 1)
        #expect(transcript.segments.count == 6)
        #expect(recognizer.pieceLengths.count == 6)
        #expect(transcript.segments.allSatisfy { $0.text.hasPrefix("段") })
    }

    /// A model that promised timestamps and gave none: the merged piece's sentences are
    /// recognised again one by one, and the rest of the file without merging.
    @Test func sentencesOfAPieceThatCannotBeSplitAreRecognisedAlone() async throws {
        let recognizer = FakeRecognizer(timestamps: .promisedButNone)
        let bursts = spacedBursts(6)
        let transcript = try await transcribe(audio(seconds: 12, bursts: bursts), recognizer: recognizer, batchSize: 1)
        #expect(transcript.segments.count == 6)
        for (segment, burst) in zip(transcript.segments, bursts) {
            #expect(abs(segment.start - burst.0) < 0.01)
            #expect(segment.end - segment.start < 1.2)
        }
        // One merged call (of all six, 9 s), then each sentence alone.
        let lengths = recognizer.pieceLengths
        #expect(lengths.count == 7 && lengths[0] > 8 * 16_000 && lengths.dropFirst().allSatisfy { $0 < 2 * 16_000 }, "\(lengths)")
    }

    /// Each timed stretch goes whole to the segment its middle lies in (a middle in a pause: to
    /// the nearer segment); a segment that gets none has no text.
    @Test func stretchesGoToTheSegmentTheirMiddleFallsIn() throws {
        // Segments at 1-3 s, 4-6 s and 7-8 s; the piece starts at 1 s after 0.5 s of padding.
        let segments = [(1.0, 3.0), (4.0, 6.0), (7.0, 8.0)].map { (start: Double, end: Double) -> SpeechSegment in
            let samples = [Float](repeating: 0.1, count: Int((end - start) * 16_000))
            return SpeechSegment(startSample: Int(start * 16_000), samples: samples)
        }
        // Times in the piece: 0.5 s is the audio's 1 s.
        let stretches = [
            TimedText(text: "一", start: 0.5, end: 2.0),   // middle 1.75 s: the first
            TimedText(text: "二", start: 2.0, end: 3.2),   // middle 3.1 s, early in the first pause: the first
            TimedText(text: "三", start: 3.0, end: 3.6),   // middle 3.8 s, late in the first pause: the second
            TimedText(text: "四", start: 4.2, end: 5.4),   // middle 5.3 s: the second
        ]
        let result = RecognitionResult(text: "一二三四", tokens: ["一", "二", "三", "四"], segments: stretches, language: "zh")
        let split = try #require(SegmentMerging.split(result, into: segments, pieceStart: 16_000, padding: 8_000))
        #expect(split.map(\.text) == ["一二", "三四", ""])
        #expect(split.allSatisfy { $0.language == "zh" && $0.timestamps.isEmpty })
        // Text without any timestamps cannot be split.
        #expect(SegmentMerging.split(RecognitionResult(text: "一二三四"), into: segments, pieceStart: 16_000, padding: 8_000) == nil)
    }

    /// Timed tokens go with their stretch, timed from their segment's own padded start; tokens
    /// that do not spell the stretches go nowhere.
    @Test func timedTokensGoWithTheirStretch() throws {
        let segments = [(1.0, 3.0), (4.0, 6.0)].map { (start: Double, end: Double) -> SpeechSegment in
            SpeechSegment(startSample: Int(start * 16_000), samples: [Float](repeating: 0.1, count: Int((end - start) * 16_000)))
        }
        let stretches = [TimedText(text: "一二", start: 0.5, end: 2.0), TimedText(text: "三", start: 3.0, end: 3.6)]
        let result = RecognitionResult(text: "一二三", tokens: ["一", "二", "三"], timestamps: [0.6, 1.2, 3.1], segments: stretches)
        let split = try #require(SegmentMerging.split(result, into: segments, pieceStart: 16_000, padding: 8_000))
        #expect(split.map(\.text) == ["一二", "三"])
        #expect(split.map(\.tokens) == [["一", "二"], ["三"]])
        // The second segment's padded input starts at 3.5 s; "三" at 3.1 s of the piece is 3.6 s.
        #expect(split.map { $0.timestamps.map { ($0 * 1000).rounded() / 1000 } } == [[0.6, 1.2], [0.1]])
        var unspelled = result
        unspelled.tokens = ["一", "二", "X", "三"]
        unspelled.timestamps = [0.6, 1.2, 1.5, 3.1]
        let untimed = try #require(SegmentMerging.split(unspelled, into: segments, pieceStart: 16_000, padding: 8_000))
        #expect(untimed.map(\.text) == ["一二", "三"])
        #expect(untimed.allSatisfy { $0.tokens.isEmpty && $0.timestamps.isEmpty })
    }

    @Test(arguments: [
        (["你好，", "世界。"], "你好，世界。"),
        ([" Hello.", " How are you?"], "Hello. How are you?"),
        (["你好", "OK", "", "好"], "你好OK好"),
    ])
    func stretchesJoinIntoText(_ stretches: [String], _ text: String) {
        #expect(SegmentMerging.joinStretches(stretches) == text)
    }

    @Test(arguments: [
        (["你", "好", "世", "界"], "你好世界"),
        (["▁hello", "▁wor", "ld", "你", "好"], "hello world你好"),
        (["你", "▁ok", "好"], "你 ok好"),
        (["hel@@", "lo", "world", "你", "ok"], "hello world你ok"),
    ])
    func tokensJoinIntoText(_ tokens: [String], _ text: String) {
        #expect(SegmentMerging.joinTokens(tokens) == text)
    }

    @Test func historyRingKeepsOnlyTheMostRecentSamples() {
        var history = AudioHistory(capacity: 10)
        history.append((0..<7).map(Float.init))
        history.append((7..<25).map(Float.init))
        history.append((25..<28).map(Float.init))
        #expect(history.samples(from: 18, count: 10) == (18..<28).map(Float.init))
        #expect(history.samples(from: 17, count: 2) == nil)
        #expect(history.samples(from: 27, count: 2) == nil)
    }

    @Test func longSpeechIsSplitBelowTheModelsLimit() async throws {
        let recognizer = FakeRecognizer()
        let transcript = try await transcribe(audio(seconds: 40, bursts: [(0.5, 39.5)]), recognizer: recognizer)
        #expect(recognizer.pieceLengths.allSatisfy { $0 <= 10 * 16_000 })
        #expect(recognizer.pieceLengths.reduce(0, +) >= 39 * 16_000)
        #expect(transcript.segments.count >= 4)
        // Pieces follow each other without gaps or overlaps.
        for (a, b) in zip(transcript.segments, transcript.segments.dropFirst()) { #expect(abs(a.end - b.start) < 1e-9) }
    }

    @Test func progressRisesToOne() async throws {
        let seen = Mutex<[Double]>([])
        _ = try await transcribe(audio(seconds: 30, bursts: [(1, 5), (10, 12), (20, 29)])) { fraction in
            seen.withLock { $0.append(fraction) }
        }
        let values = seen.withLock { $0 }
        #expect(values.count > 3)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(values.last == 1)
    }

    @Test func cancellationStopsTheDecode() async throws {
        let bursts = stride(from: 1.0, to: 590, by: 3).map { ($0, $0 + 1) }
        // 197 model calls of 0.1 s: far longer than a loaded machine needs to deliver the cancel.
        let recognizer = FakeRecognizer(delay: .milliseconds(100))
        let data = audio(seconds: 600, bursts: bursts)
        let task = Task { try await transcribe(data, recognizer: recognizer) }
        // Cancel once the model is at work.
        for _ in 0..<500 where recognizer.pieceLengths.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!recognizer.pieceLengths.isEmpty)
        task.cancel()
        let error = try await #require(throws: TingxieError.self) { try await task.value }
        #expect(error.code == .canceled)
        #expect(recognizer.pieceLengths.count < bursts.count)
    }

    @Test(.enabled(if: TestData.corpus != nil && TestData.vadModel != nil, TestData.skipReason))
    func speechThatNeverPausesIsCutForLiveAudio() async throws {
        // Ten corpus sentences back to back: 0.4 s between them, under the VAD's 0.6 s pause.
        let corpus = try #require(TestData.corpus)
        var speech: [Float] = []
        for id in 1...10 { speech += try TestData.samples(corpus.appendingPathComponent(String(format: "%03d.wav", id))) }
        let vad = try SileroVADFactory(configuration: .init(model: try #require(TestData.vadModel)))
        /// Segment ends in seconds, and how much audio had been read when the first one came.
        func run(maxSpeech: Double?) async throws -> (ends: [Double], readAtFirst: Double) {
            try await withThreadPool { pool in
                let pipeline = try TranscriptionPipeline(recognizer: FakeRecognizer(), detectors: vad,
                                                         configuration: .init(mergeTargetSeconds: 0, maxSpeechSeconds: maxSpeech), threadPool: pool)
                let source = CountingSource(speech)
                var readAtFirst: Double?
                let transcript = try pipeline.run(source: source, canceled: Atomic(false), progress: nil) { _ in
                    readAtFirst = readAtFirst ?? Double(source.delivered) / Double(modelSampleRate)
                }
                return (transcript.segments.map(\.end), try #require(readAtFirst))
            }
        }
        let total = Double(speech.count) / Double(modelSampleRate)
        let unlimited = try await run(maxSpeech: nil)
        let limited = try await run(maxSpeech: 10)
        print(String(format: "%.1f s of unbroken speech: first segment after %.1f s without a limit, %.1f s with 10 s (segment ends %@)",
                     total, unlimited.readAtFirst, limited.readAtFirst, limited.ends.map { String(format: "%.1f", $0) }.joined(separator: ", ")))
        // Without a limit nothing ends before the audio does.
        #expect(unlimited.readAtFirst > total - 1)
        // With one, segments come while the audio is still being read, none longer than 15 s.
        #expect(limited.readAtFirst <= 16)
        #expect(limited.ends.count >= 3)
        #expect(zip([0] + limited.ends, limited.ends).allSatisfy { $1 - $0 <= 15.5 })
    }
}

/// Live partials never wait for a decode slot: while jobs hold every slot they are skipped, so
/// no job ever waits behind them; the sentence itself waits its turn and comes.
@Test func partialsAreSkippedWhileEveryDecodeSlotIsHeld() async throws {
    let base = ParallelRecorder(holdLength: 7)
    let shared = SharedRecognizer(base, limit: 1)
    // A job's decode holds the only slot.
    let holder = Task.detached { _ = try shared.recognize(batch: [[Float](repeating: 0, count: 7)]) }
    for _ in 0..<500 where base.held.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
    #expect(base.held.load(ordering: .relaxed) == 1)
    /// What the pipeline's thread tells the test.
    final class Progress: Sendable {
        let partials = Atomic<Int>(0)
        let finished = Atomic<Bool>(false)
    }
    let progress = Progress()
    let transcript = try await withThreadPool { pool in
        let pipeline = try TranscriptionPipeline(recognizer: shared, detectors: FakeVAD(),
                                                 configuration: .init(paddingSeconds: 0, partialIntervalSeconds: 0.5), threadPool: pool)
        let run = Task {
            defer { progress.finished.store(true, ordering: .relaxed) }
            return try await pool.runIfActive {
                // 4 s of speech to the end of the audio: the sentence ends only after the last chunk,
                // and the held decode is let go only then, so every partial is tried while it runs.
                let source = CountingSource([Float](repeating: 0.1, count: 4 * modelSampleRate), atEnd: { base.release.signal() })
                return try pipeline.run(source: source, canceled: Atomic(false), progress: nil,
                                        onPartial: { _ in progress.partials.add(1, ordering: .relaxed) })
            }
        }
        // A partial waiting for the slot would wait for ever: after a minute it is let go, and the test fails.
        for _ in 0..<600 where !progress.finished.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(100)) }
        if !progress.finished.load(ordering: .relaxed) {
            Issue.record("the live pipeline waited for the held decode slot")
            base.release.signal()
        }
        return try await run.value
    }
    try await holder.value
    #expect(progress.partials.load(ordering: .relaxed) == 0)
    #expect(base.calls.withLock { $0.count } == 2, "the held decode and the sentence, no partial")
    #expect(transcript.segments.count == 1)
}

/// The partials' policy: show only what two consecutive hypotheses agree on, never take back.
@Test func localAgreementShowsWhatTwoHypothesesAgreeOn() {
    var agreement = LocalAgreement()
    #expect(agreement.update("今天") == "", "one hypothesis settles nothing")
    #expect(agreement.update("今天上午") == "今天")
    #expect(agreement.update("今天上午九点") == "上午")
    #expect(agreement.update("今天下午九点") == "", "a revision of shown text waits for the final result")
    #expect(agreement.update("今天上午九点半") == "")
    #expect(agreement.update("今天上午九点半我们") == "九点半")
    #expect(agreement.committed == "今天上午九点半")
    agreement.reset()
    #expect(agreement.update("明天") == "")
    #expect(agreement.update("明天见") == "明天")
    // A streaming model's text only grows: it shows at once.
    agreement.reset()
    #expect(agreement.update("乙", settled: true) == "乙")
    #expect(agreement.update("乙乙", settled: true) == "乙")
    #expect(agreement.committed == "乙乙")
}

/// A sentence's final text goes out without what its partials showed; a segment that ends as
/// several sentences (cut at a pause) shares what was shown among them, and a final result that
/// revised it goes out whole.
@Test func finalSentencesRepeatNothingThePartialsShowed() {
    var agreement = LocalAgreement()
    _ = agreement.update("今天上午九点半")
    _ = agreement.update("今天上午九点半我")
    #expect(agreement.finish("今天上午") == "")
    #expect(agreement.finish("九点半我们开会") == "我们开会")
    #expect(agreement.finish("下午见") == "下午见")
    _ = agreement.update("明天见")
    _ = agreement.update("明天见啊")
    #expect(agreement.finish("明天再见") == "明天再见")
    #expect(agreement.committed.isEmpty)
    // Punctuated finals against unpunctuated partials.
    _ = agreement.update("今天天气很好我们去")
    _ = agreement.update("今天天气很好我们去公")
    #expect(agreement.finish("今天天气很好。") == "")
    #expect(agreement.finish("我们去公园。") == "公园。")
}
