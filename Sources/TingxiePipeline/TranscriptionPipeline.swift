import Foundation
import NIOPosix
import Synchronization
import TingxieAudio
import TingxieCore
import TingxieText

/// File -> transcript: streaming decode, VAD, bounded segments, batched recognition, assembly.
///
/// Only a bounded window of audio is held at any time: the decoder's current chunk, the
/// VAD's open segment (capped by its maximum speech length) and one batch of segments.
public final class TranscriptionPipeline: Sendable {
    public struct Configuration: Sendable {
        /// Language of the audio when a transcription names none, for text normalisation.
        public var language: String
        /// Longest piece given to the model in one call; `nil` uses the model's own limit.
        public var maxSegmentSeconds: Double?
        /// Pieces decoded together in one model call. With Whisper base on 2 cores one at a time
        /// was faster (RTF 0.074 against 0.079 for batches of 4 on a 10-minute file).
        public var batchSize: Int
        /// Silence added before and after each segment. Models are trained on utterances with
        /// some silence around them; on the zh-tts corpus 0.2 s lowered Whisper's CER from
        /// 11.5% to 10.5%.
        public var paddingSeconds: Double
        /// Audio from before each VAD segment added back to it (never reaching into the previous
        /// segment). silero flags speech a little after it starts, and a clipped first syllable
        /// changes Whisper's whole sentence: on the corpus's format variants, 0.3-0.4 s kept every
        /// lossy copy within 2 characters of its WAV, 0.25 s and less did not.
        public var leadSeconds: Double
        /// Neighbouring segments are recognised as one piece of up to this length when the model
        /// gives timestamps to split the text back (0 turns merging off); `nil` uses the model's
        /// `ModelInfo.mergeTargetSeconds`.
        public var mergeTargetSeconds: Double?
        /// Segments further apart than this are never merged; `nil` uses the model's.
        public var mergeMaxGapSeconds: Double?
        /// Speech running on longer than this is cut by the VAD (near a dip in its speech
        /// probability, at 1.5 times this at the latest); `nil` keeps the VAD's own limit.
        /// For live audio, where a sentence is only sent once it ends.
        public var maxSpeechSeconds: Double?
        /// Detected speech that a result leaves uncovered for longer than this is decoded again
        /// on its own (and reported as a gap if that gives no text either).
        public var coverageToleranceSeconds: Double
        /// A segment whose text comes in several timed stretches is cut into transcript segments
        /// where a stretch ends at a pause in the audio (`Pauses`), each with its own times.
        public var splitsAtStretches: Bool
        /// Live partial results: the open sentence is recognised again after every this much new
        /// speech (when `run` is given a partial handler).
        public var partialIntervalSeconds: Double
        /// The most of a stream's running time its partial recognitions may take; past it,
        /// whenever received audio waits to be read, and while every decode slot is taken (by
        /// jobs or sentences), partials are skipped, never queued.
        public var partialShare: Double

        public init(language: String = "zh", maxSegmentSeconds: Double? = nil, batchSize: Int = 1,
                    paddingSeconds: Double = 0.2, leadSeconds: Double = 0.35,
                    mergeTargetSeconds: Double? = nil, mergeMaxGapSeconds: Double? = nil, maxSpeechSeconds: Double? = nil,
                    coverageToleranceSeconds: Double = 1, splitsAtStretches: Bool = true,
                    partialIntervalSeconds: Double = 0.6, partialShare: Double = 0.5) {
            self.language = language
            self.maxSegmentSeconds = maxSegmentSeconds
            self.batchSize = max(1, batchSize)
            self.paddingSeconds = max(0, paddingSeconds)
            self.leadSeconds = max(0, leadSeconds)
            self.mergeTargetSeconds = mergeTargetSeconds.map { max(0, $0) }
            self.mergeMaxGapSeconds = mergeMaxGapSeconds.map { max(0, $0) }
            self.maxSpeechSeconds = maxSpeechSeconds
            self.coverageToleranceSeconds = max(0.1, coverageToleranceSeconds)
            self.splitsAtStretches = splitsAtStretches
            self.partialIntervalSeconds = max(0.1, partialIntervalSeconds)
            self.partialShare = min(1, max(0, partialShare))
        }
    }

    /// Reports the fraction (0...1) of the audio processed so far.
    public typealias ProgressHandler = @Sendable (Double) -> Void
    /// Receives each segment of the transcript as soon as it is recognised.
    public typealias SegmentHandler = (Transcript.Segment) -> Void
    /// Receives the whole text recognised so far of a sentence still being spoken.
    public typealias PartialHandler = (PartialText) -> Void

    /// A sentence's text while it is spoken.
    public struct PartialText: Sendable, Equatable {
        public var text: String
        /// Whether later text may differ in what this says: an offline model's re-recognition
        /// of the grown sentence may revise words; a streaming model's text only grows.
        public var revisable: Bool

        public init(text: String, revisable: Bool) {
            self.text = text
            self.revisable = revisable
        }
    }

    public let recognizer: any Recognizer
    public let detectors: any VoiceActivityDetectorFactory
    public let configuration: Configuration
    /// Punctuates each segment's text; `nil` when the model punctuates itself or none was given.
    public let punctuator: (any Punctuator)?
    /// Gives live partial text as audio arrives, when there is one; otherwise partials come from
    /// re-recognising the open sentence with `recognizer`.
    public let streaming: (any StreamingRecognizer)?
    /// Text in Chinese is given in Simplified characters; other text as the model wrote it.
    private let simplifying: TextNormalizer
    private let plain = TextNormalizer(toSimplified: nil)
    private let splitter: SegmentSplitter
    /// Uncovered speech up to this many samples long is timing noise, not skipped speech.
    private let coverageTolerance: Int
    private let padding: [Float]
    private let threadPool: NIOThreadPool

    /// - Parameter threadPool: where blocking decode and inference run; started by the caller,
    ///   sized to the number of files decoded at once.
    /// - Parameter punctuator: used for models whose text has no punctuation.
    /// - Parameter streaming: a streaming model for live partials.
    public init(recognizer: any Recognizer, detectors: any VoiceActivityDetectorFactory,
                configuration: Configuration = Configuration(), punctuator: (any Punctuator)? = nil,
                streaming: (any StreamingRecognizer)? = nil, threadPool: NIOThreadPool) throws {
        self.recognizer = recognizer
        self.detectors = detectors
        self.configuration = configuration
        self.punctuator = recognizer.info.punctuates ? nil : punctuator
        self.streaming = streaming
        self.threadPool = threadPool
        simplifying = try TextNormalizer.forLanguage("zh")
        let padding = [Float](repeating: 0, count: Int(configuration.paddingSeconds * Double(modelSampleRate)))
        self.padding = padding
        let maxSeconds = configuration.maxSegmentSeconds ?? recognizer.info.maxSegmentSeconds
        splitter = SegmentSplitter(maxSeconds: maxSeconds - 2 * configuration.paddingSeconds)
        coverageTolerance = Int(configuration.coverageToleranceSeconds * Double(modelSampleRate))
    }

    /// Transcribes one file.
    /// - Parameter hotwords: terms to favour in this transcript (see `HotwordMatcher`); used for
    ///   Chinese text only.
    /// - Parameter options: the language spoken and the task, which the model must accept
    ///   (`ModelInfo.check`).
    /// - Throws: `TingxieError` naming the file and what was wrong; `.canceled` when the task is cancelled.
    /// - Parameter onSegment: called with each segment as soon as it is recognised.
    /// - Parameter allowPartial: a truncated or corrupt file is transcribed as far as it reads,
    ///   with `warnings`, instead of failing.
    public func transcribe(_ url: URL, hotwords: HotwordMatcher? = nil, options: RecognitionOptions = RecognitionOptions(),
                           allowPartial: Bool = false, progress: ProgressHandler? = nil,
                           onSegment: (@Sendable (Transcript.Segment) -> Void)? = nil) async throws -> Transcript {
        let canceled = Atomic<Bool>(false)
        do {
            return try await withTaskCancellationHandler {
                try await threadPool.runIfActive { [self] in
                    let source = try AudioDecoder.open(url, allowPartial: allowPartial)
                    defer { source.close() }
                    return try run(source: source, hotwords: hotwords, options: options, canceled: canceled,
                                   progress: progress, onSegment: onSegment)
                }
            } onCancel: {
                canceled.store(true, ordering: .relaxed)
            }
        } catch is CancellationError {
            // Cancelled before a pool thread picked the work up.
            throw TingxieError(.canceled, "transcription canceled")
        }
    }

    /// The same model and VAD with another configuration (e.g. no merging, for live audio).
    public func with(configuration: Configuration) throws -> TranscriptionPipeline {
        try TranscriptionPipeline(recognizer: recognizer, detectors: detectors, configuration: configuration, punctuator: punctuator,
                                  streaming: streaming, threadPool: threadPool)
    }

    /// Transcribes an already opened audio stream on the calling thread (blocking).
    /// - Parameter onSegment: called with each segment as soon as it is recognised (live audio).
    /// - Parameter onPartial: called with the open sentence's text (live audio): from the
    ///   streaming model as it grows, else re-recognised every `partialIntervalSeconds` of new
    ///   speech; either way within `partialShare` of the running time.
    public func run(source: any AudioSource, hotwords: HotwordMatcher? = nil, options: RecognitionOptions = RecognitionOptions(),
                    canceled: borrowing Atomic<Bool>, progress: ProgressHandler?, onSegment: SegmentHandler? = nil,
                    onPartial: PartialHandler? = nil) throws -> Transcript {
        try recognizer.info.check(options)
        let started = ContinuousClock.now
        var detector = try (configuration.maxSpeechSeconds.map(detectors.limitingSpeech) ?? detectors).makeDetector()
        let expectedSamples = source.duration.map { Int($0 * Double(modelSampleRate)) }
        var history = AudioHistory(capacity: Self.historySeconds * modelSampleRate)
        let lead = Int(configuration.leadSeconds * Double(modelSampleRate))
        var lastEnd = 0
        /// Adds up to `lead` samples of real audio before a segment, never reaching into the previous one.
        func withLead(_ segment: SpeechSegment) -> SpeechSegment {
            let count = min(lead, segment.startSample - lastEnd)
            lastEnd = segment.endSample
            guard let before = history.samples(from: segment.startSample - count, count: count) else { return segment }
            return SpeechSegment(startSample: segment.startSample - count, samples: before + segment.samples, leadSamples: count)
        }
        var decodedSamples = 0
        var pending: [SpeechSegment] = []
        var segments: [Transcript.Segment] = []
        var gaps: [Transcript.Gap] = []
        var language: String?

        // Models that can be biased get the hotwords in their decoder; the text stage then only
        // confirms those and looks for the rest (terms the decoder cannot spell), or for all of
        // them where the model asks.
        let biasing = recognizer.decodableHotwords(hotwords?.hotwords ?? [])
        let textStage = biasing.isEmpty || recognizer.info.hotwordsAlsoInText ? hotwords : hotwords?.without(biasing)
        let model = recognizer.info
        let mergeSeconds = configuration.mergeTargetSeconds ?? model.mergeTargetSeconds
        var merging = mergeSeconds > 0 && model.splitsMergedPieces
        let mergeTarget = min(Int(mergeSeconds * Double(modelSampleRate)), splitter.maxSamples)
        let mergeGap = Int((configuration.mergeMaxGapSeconds ?? model.mergeMaxGapSeconds) * Double(modelSampleRate))

        /// Recognises pieces of audio, each with silence around it, with the hotwords the decoder takes.
        /// `ifIdle`: only when a decode slot is free at once, else nothing (live partials never wait).
        func recognize(_ pieces: [[Float]], ifIdle: Bool = false) throws -> [RecognitionResult] {
            let batch = pieces.map { padding + $0 + padding }
            guard ifIdle else { return try recognizer.recognize(batch: batch, hotwords: biasing, options: options) }
            return try recognizer.recognizeIfIdle(batch: batch, hotwords: biasing, options: options) ?? []
        }

        func recognizePending(all: Bool) throws {
            while true {
                let pieces = merging
                    ? SegmentMerging.pieces(pending, target: mergeTarget, maxGap: mergeGap, all: all)
                    : pending.map { [$0] }
                guard pieces.count >= configuration.batchSize || (all && !pieces.isEmpty) else { return }
                let batch = Array(pieces.prefix(configuration.batchSize))
                pending.removeFirst(batch.reduce(0) { $0 + $1.count })
                // A merged piece is the audio from its first segment's start to its last one's end,
                // pauses included; if the history no longer holds it, its segments go one by one.
                let inputs: [[SpeechSegment]] = batch.flatMap { piece -> [[SpeechSegment]] in
                    guard piece.count > 1 else { return [piece] }
                    guard let audio = history.samples(from: piece[0].startSample, count: piece.last!.endSample - piece[0].startSample) else {
                        return piece.map { [$0] }
                    }
                    return [[SpeechSegment(startSample: piece[0].startSample, samples: audio, leadSamples: piece[0].leadSamples)] + piece]
                }
                let results = try recognize(inputs.map { $0[0].samples })
                var decoded: [Decoded] = []
                for (input, result) in zip(inputs, results) {
                    language = language ?? result.language
                    let parts = Array(input.dropFirst())
                    if parts.isEmpty {
                        decoded.append(Decoded(input[0], result, covered: covered(by: result, of: input[0]), merged: false))
                    } else if let split = SegmentMerging.split(result, into: parts, pieceStart: input[0].startSample, padding: padding.count) {
                        // A stretch counts for every sentence it reaches into, whichever one its text went to.
                        let covered = covered(by: result, of: input[0])
                        decoded += zip(parts, split).map { Decoded($0, $1, covered: covered, merged: true) }
                    } else {
                        // The model gave no timestamps after all: its sentences are recognised
                        // one by one, and so is the rest of the file.
                        merging = false
                        let alone = try recognize(parts.map(\.samples))
                        decoded += zip(parts, alone).map { Decoded($0, $1, covered: covered(by: $1, of: $0), merged: false) }
                    }
                }
                try appendCovering(decoded)
            }
        }
        /// The timeline ranges a result of `input`'s audio (recognised with padding around it) covers.
        func covered(by result: RecognitionResult, of input: SpeechSegment) -> [Range<Int>] {
            SpeechCoverage.covered(by: result, input: input.startSample - padding.count..<input.endSample + padding.count)
        }
        /// Appends decoded sentences, first decoding again on its own any of their speech that
        /// their results do not cover; what still gives no text is recorded as a gap.
        func appendCovering(_ decoded: [Decoded]) throws {
            let margin = Int(configuration.leadSeconds * Double(modelSampleRate))
            let holes = decoded.map { item -> [Hole] in
                let segment = item.segment
                let speech = segment.speechStartSample..<segment.endSample
                // A sentence of a merged piece that got no text, and no stretch reaching into it, is
                // decoded again however short.
                let untouched = item.merged && item.result.text.trimmingCharacters(in: .whitespaces).isEmpty
                    && !item.covered.contains { $0.overlaps(speech) }
                let uncovered = SpeechCoverage.uncovered(speech, by: item.covered)
                guard !uncovered.isEmpty else { return [] }
                let pauses = Pauses(segment.samples)
                return uncovered.compactMap { range -> Hole? in
                    // Only what has sound: the silence a VAD segment ends with is no lost speech.
                    let local = range.lowerBound - segment.startSample..<range.upperBound - segment.startSample
                    guard let heard = pauses.audible(local).map({ $0.lowerBound + segment.startSample..<$0.upperBound + segment.startSample }),
                          untouched || heard.count > coverageTolerance else { return nil }
                    // With some audio either side, so that no syllable at its edges is clipped.
                    let lower = max(segment.startSample, heard.lowerBound - margin)
                    let upper = min(segment.endSample, heard.upperBound + margin)
                    let audio = SpeechSegment(startSample: lower, samples: Array(segment.samples[lower - segment.startSample..<upper - segment.startSample]),
                                              leadSamples: heard.lowerBound - lower)
                    // The very audio a sentence was decoded alone from is not decoded again.
                    return Hole(range: heard, audio: audio, retried: item.merged || lower > segment.startSample || upper < segment.endSample)
                }
            }
            let again = holes.flatMap { $0.filter(\.retried).map(\.audio.samples) }
            var results: [RecognitionResult] = []
            for first in stride(from: 0, to: again.count, by: configuration.batchSize) {
                results += try recognize(Array(again[first..<min(again.count, first + configuration.batchSize)]))
            }
            var next = results.makeIterator()
            for (position, (item, holes)) in zip(decoded, holes).enumerated() {
                // The sentence's own text spans its speech but the holes before and after what it
                // covers; holes inside cut it in parts, each with the stretches or tokens timed in it.
                let speech = item.segment.speechStartSample..<item.segment.endSample
                let inside = item.covered.filter { $0.overlaps(speech) }
                var lower = speech.lowerBound
                var upper = speech.upperBound
                if let first = holes.first, let start = inside.map(\.lowerBound).min(), first.range.upperBound <= start { lower = first.range.upperBound }
                if let last = holes.last, let end = inside.map(\.upperBound).max(), last.range.lowerBound >= end { upper = last.range.lowerBound }
                let middle = holes.filter { $0.range.lowerBound > lower && $0.range.upperBound < upper }
                let bounds = [lower] + middle.flatMap { [$0.range.lowerBound, $0.range.upperBound] } + [upper]
                let spans = stride(from: 0, to: bounds.count, by: 2).map { bounds[$0]..<max(bounds[$0], bounds[$0 + 1]) }
                let parts = spans.map { span in
                    SpeechSegment(startSample: span.lowerBound,
                                  samples: Array(item.segment.samples[span.lowerBound - item.segment.startSample..<span.upperBound - item.segment.startSample]))
                }
                let own = spans.count > 1
                    ? SegmentMerging.split(item.result, into: parts, pieceStart: item.segment.startSample, padding: padding.count).map { Array(zip(parts, $0)) }
                    : nil
                var pieces: [(start: Int, hole: Hole?, segment: SpeechSegment, result: RecognitionResult?)] = own.map { own in
                    own.map { ($0.0.startSample, nil, $0.0, $0.1) }
                } ?? [(lower, nil, item.segment, item.result)]
                for hole in holes { pieces.append((hole.range.lowerBound, hole, hole.audio, hole.retried ? next.next() : nil)) }
                // Text already heard in this sentence or its neighbours.
                let heard = decoded[max(0, position - 1)...min(decoded.count - 1, position + 1)].map(\.result.text).joined()
                // In the order they were spoken.
                for piece in pieces.sorted(by: { $0.start < $1.start }) {
                    guard let hole = piece.hole else {
                        if let result = piece.result {
                            let span = own == nil ? lower..<max(lower, upper) : piece.segment.startSample..<piece.segment.endSample
                            append(piece.segment, result, span: span)
                        }
                        continue
                    }
                    let text = piece.result?.text.trimmingCharacters(in: .whitespaces) ?? ""
                    // Words already heard were mistimed, not missing (a short reply such as "是的"
                    // may well be said twice).
                    if text.count >= Self.repeatedTextMinimum, heard.contains(text) { continue }
                    if let result = piece.result, append(hole.audio, result, span: hole.range) { continue }
                    if hole.range.count > coverageTolerance {
                        gaps.append(Transcript.Gap(start: Double(hole.range.lowerBound) / Double(modelSampleRate),
                                                   end: Double(hole.range.upperBound) / Double(modelSampleRate)))
                    }
                }
            }
        }
        /// Whether a result's text is Chinese: in the language the model found for it, else the one asked for.
        func isChinese(_ result: RecognitionResult) -> Bool {
            options.task == .transcribe && TextNormalizer.isChinese(result.language ?? options.language ?? configuration.language)
        }
        /// Adds a segment's text to the transcript: a transcript segment per sentence, where the
        /// model's timed stretches end at a pause in the audio (sentences the VAD heard together,
        /// the pause between them shorter than its minimum silence); false when it has no text.
        /// - Parameter span: the samples the text was spoken in; the segment's speech unless given.
        @discardableResult
        func append(_ segment: SpeechSegment, _ result: RecognitionResult, span: Range<Int>? = nil) -> Bool {
            let whole = span ?? segment.speechStartSample..<segment.endSample
            guard configuration.splitsAtStretches, let stretches = SegmentMerging.sentences(of: result) else {
                return appendSpan(segment, result, span: whole)
            }
            /// A time of the result as an index into the segment's samples.
            func index(_ time: Double) -> Int { Int((time * Double(modelSampleRate)).rounded()) - padding.count }
            let near = Pauses.minimumSamples
            let pauses = Pauses(segment.samples)
            var sentences: [(stretches: [RecognitionResult], start: Int)] = [([stretches[0].result], whole.lowerBound)]
            var ends: [Int] = []
            for (previous, next) in zip(stretches, stretches.dropFirst()) {
                let (a, b) = (index(previous.end), index(next.start))
                if let pause = pauses.pause(near: min(a, b) - near..<max(a, b) + near),
                   segment.startSample + pause.lowerBound > sentences[sentences.count - 1].start {
                    ends.append(segment.startSample + pause.lowerBound)
                    sentences.append(([next.result], segment.startSample + pause.upperBound))
                } else {
                    sentences[sentences.count - 1].stretches.append(next.result)
                }
            }
            ends.append(whole.upperBound)
            var appended = false
            for (sentence, end) in zip(sentences, ends) {
                let joined = RecognitionResult(text: SegmentMerging.joinStretches(sentence.stretches.map(\.text)),
                                               tokens: sentence.stretches.flatMap(\.tokens), timestamps: sentence.stretches.flatMap(\.timestamps),
                                               segments: sentence.stretches.flatMap(\.segments), language: result.language)
                let start = max(whole.lowerBound, min(sentence.start, end))
                appended = appendSpan(segment, joined, span: start..<max(start, min(end, whole.upperBound))) || appended
            }
            return appended
        }
        func appendSpan(_ segment: SpeechSegment, _ result: RecognitionResult, span: Range<Int>) -> Bool {
            // Each piece's text is in the language the model found for it, or English.
            let chinese = isChinese(result)
            // A hotword heard as an ordinary word is weighed by the model against that word, on
            // the sentence's audio (a model that cannot score text keeps the word).
            let from = max(0, span.lowerBound - segment.startSample), to = min(segment.samples.count, span.upperBound - segment.startSample)
            let likelihoods: (([String]) -> [Double]?)? = recognizer.info.scoresText && from < to ? { texts in
                try? self.recognizer.likelihoods(of: texts, in: self.padding + Array(segment.samples[from..<to]) + self.padding, options: options)
            } : nil
            guard let assembled = assemble(segment, result, span: span, id: segments.count, normalizer: chinese ? simplifying : plain,
                                           hotwords: chinese ? textStage : nil, biasing: biasing, likelihoods: likelihoods) else { return false }
            segments.append(assembled)
            onSegment?(assembled)
            return true
        }
        var reported = 0.0
        func report() {
            guard let progress else { return }
            let total = max(expectedSamples ?? decodedSamples, decodedSamples, 1)
            // Audio counts as processed once it is decoded and no segment before it waits for
            // the model. A VAD segment can start before audio already counted: never go back.
            let done = pending.first?.startSample ?? decodedSamples
            reported = max(reported, min(1, Double(done) / Double(total)))
            progress(reported)
        }

        var partialAt = 0
        var partialSeconds = 0.0
        let partialStep = Int(configuration.partialIntervalSeconds * Double(modelSampleRate))
        /// Whether partials may take time now: within their share of the running time, and
        /// never while received audio waits to be read (they are skipped, not queued).
        func partialsHaveTime() -> Bool {
            partialSeconds <= configuration.partialShare * (ContinuousClock.now - started).seconds && source.bufferedSeconds < 1
        }
        func normalizePartial(_ text: String, chinese: Bool) -> String {
            (chinese ? simplifying : plain).normalize(text)
        }
        /// Recognises the open sentence again once it has grown by `partialStep`.
        func offerPartial(_ onPartial: PartialHandler) throws {
            let open = detector.openSpeechSamples
            if open < partialAt { partialAt = 0 }   // a new sentence
            guard open >= partialStep, open - partialAt >= partialStep, pending.isEmpty else { return }
            partialAt = open
            let start = max(lastEnd, decodedSamples - open)
            guard partialsHaveTime(), let audio = history.samples(from: start, count: decodedSamples - start) else { return }
            let began = ContinuousClock.now
            // Skipped, not waited for, while jobs and sentences hold every decode slot.
            guard let result = try recognize([audio], ifIdle: true).first else { return }
            partialSeconds += (ContinuousClock.now - began).seconds
            let text = normalizePartial(result.text, chinese: isChinese(result))
            if !text.isEmpty { onPartial(PartialText(text: text, revisable: true)) }
        }

        // With a streaming model, each open sentence's audio goes to it as it arrives.
        let live = try onPartial == nil ? nil : streaming?.makeStream()
        let liveChinese = options.task == .transcribe && TextNormalizer.isChinese(options.language ?? configuration.language)
        var liveOpen = false
        var liveText = ""
        /// Feeds the streaming model the open sentence's new audio and passes on its grown text.
        func feedStreaming(_ live: any StreamingDecoding, chunk: [Float], closed: Bool, _ onPartial: PartialHandler) {
            let open = detector.openSpeechSamples
            if liveOpen, closed || open == 0 {
                live.reset()
                (liveOpen, liveText) = (false, "")
            }
            guard open > 0 else { return }
            if liveOpen {
                live.accept(chunk)
            } else {
                // The VAD knows a sentence began only some way into it: its start comes from the history.
                let start = max(lastEnd, decodedSamples - open)
                guard let audio = history.samples(from: start, count: decodedSamples - start) else { return }
                live.accept(audio)
                liveOpen = true
            }
            guard partialsHaveTime() else { return }
            let began = ContinuousClock.now
            let text = normalizePartial(live.decode(), chinese: liveChinese)
            partialSeconds += (ContinuousClock.now - began).seconds
            guard !text.isEmpty, text != liveText else { return }
            liveText = text
            onPartial(PartialText(text: text, revisable: false))
        }

        while let chunk = try source.nextChunk() {
            if canceled.load(ordering: .relaxed) { throw TingxieError(.canceled, "transcription canceled") }
            decodedSamples += chunk.count
            history.append(chunk)
            let ended = try detector.accept(chunk)
            pending += ended.map(withLead).flatMap(splitter.split)
            try recognizePending(all: false)
            if let onPartial, let live {
                feedStreaming(live, chunk: chunk, closed: !ended.isEmpty, onPartial)
            } else if let onPartial {
                try offerPartial(onPartial)
            }
            report()
        }
        pending += try detector.finish().map(withLead).flatMap(splitter.split)
        try recognizePending(all: true)
        progress?(1)

        let duration = Double(decodedSamples) / Double(modelSampleRate)
        let spoken = language ?? options.language.flatMap { $0 == ModelInfo.detect ? nil : $0 } ?? configuration.language
        let separator = Self.separator(before: "", language: spoken, task: options.task)
        var transcript = Transcript(
            text: segments.map(\.text).joined(separator: separator),
            durationS: duration,
            language: spoken,
            task: options.task,
            model: recognizer.info.name,
            segments: segments,
            processingS: (ContinuousClock.now - started).seconds
        )
        let warnings = source.warnings + (gaps.isEmpty ? [] : [Self.gapWarning(gaps)])
        transcript.warnings = warnings.isEmpty ? nil : warnings
        transcript.gaps = gaps.isEmpty ? nil : gaps
        return transcript
    }

    /// A sentence as the model gave it, with the timeline ranges its piece's result covers.
    private struct Decoded {
        var segment: SpeechSegment
        var result: RecognitionResult
        var covered: [Range<Int>]
        /// Whether it was decoded in a piece with other sentences.
        var merged: Bool

        init(_ segment: SpeechSegment, _ result: RecognitionResult, covered: [Range<Int>], merged: Bool) {
            self.segment = segment
            self.result = result
            self.covered = covered
            self.merged = merged
        }
    }

    /// Speech a sentence's result left uncovered (with sound, on the audio's timeline), and the
    /// audio decoded for it: the same with some either side. `retried` is false where that audio
    /// is the sentence's own, already decoded alone.
    private struct Hole {
        var range: Range<Int>
        var audio: SpeechSegment
        var retried: Bool
    }

    /// The warning a transcript with gaps carries.
    public static func gapWarning(_ gaps: [Transcript.Gap]) -> String {
        let seconds = gaps.reduce(0) { $0 + $1.end - $1.start }
        let listed = gaps.prefix(5).map { String(format: "%.1f-%.1f s", $0.start, $0.end) }.joined(separator: ", ")
        return String(format: "%d stretch%@ of speech (%.1f s in all) gave no text, even decoded on %@ own: %@%@",
                      gaps.count, gaps.count == 1 ? "" : "es", seconds, gaps.count == 1 ? "its" : "their", listed, gaps.count > 5 ? ", ..." : "")
    }

    /// - Parameter span: the samples of the audio's timeline the text was spoken in.
    private func assemble(_ segment: SpeechSegment, _ result: RecognitionResult, span: Range<Int>, id: Int, normalizer: TextNormalizer,
                          hotwords: HotwordMatcher?, biasing: [Hotword], likelihoods: (([String]) -> [Double]?)?) -> Transcript.Segment? {
        var text = normalizer.normalize(result.text)
        guard !text.isEmpty else { return nil }
        // Model timestamps count from the start of the padded input; one before the span (in the
        // padding or the lead-in before the speech) or after its end is dated at its edge.
        let offset = Double(segment.startSample - padding.count) / Double(modelSampleRate)
        let start = Double(span.lowerBound) / Double(modelSampleRate)
        let end = Double(span.upperBound) / Double(modelSampleRate)
        let hasTimestamps = !result.timestamps.isEmpty && result.timestamps.count == result.tokens.count
        var tokens = hasTimestamps ? result.tokens.map(normalizer.normalize) : nil
        var timestamps = hasTimestamps ? result.timestamps.map { min(end, max(start, $0 + offset)) } : nil
        var applications: [HotwordApplication] = []
        if let hotwords, !hotwords.isEmpty {
            let heard = text
            let applied = hotwords.apply(to: text, confirm: likelihoods.map { likelihoods in
                { questions in
                    guard let scores = likelihoods([heard] + questions.map(\.replaced)), scores.count == questions.count + 1 else {
                        return questions.map { _ in false }
                    }
                    // An everyday word gets no head start over the model's; a name it rarely saw does.
                    return questions.enumerated().map { index, question in
                        let start = question.isWord ? 0 : Self.hotwordMargin * Double(question.hotword.text.count) * min(question.hotword.weight, 2)
                        return scores[index + 1] >= scores[0] - start
                    }
                }
            })
            if !applied.applications.isEmpty {
                // Character tokens follow the text; other tokens stay as the model gave them.
                if let old = tokens, let times = timestamps, old.count == text.count, old.allSatisfy({ $0.count == 1 }) {
                    tokens = applied.text.map(String.init)
                    timestamps = HotwordMatcher.retime(times, applications: applied.applications)
                }
                text = applied.text
                applications = applied.applications
            }
        }
        if !biasing.isEmpty {
            applications = (applications + HotwordMatcher.decoded(biasing, in: text, besides: applications)).sorted { $0.offset < $1.offset }
        }
        if let punctuator {
            (text, applications) = PunctuationStage.apply(punctuator, to: text, applications: applications)
        }
        return Transcript.Segment(
            id: id,
            start: start,
            end: end,
            text: text,
            tokens: tokens,
            timestamps: timestamps,
            hotwords: applications.isEmpty ? nil : applications
        )
    }

    /// Log-probability per character (at weight 1, at most twice that for weights above 2) by
    /// which a listed name that is no everyday word may be less likely than the words the model
    /// wrote for the same sounds, and still replace them: the model's language prior has rarely seen it.
    public static let hotwordMargin = 4.0

    /// Text decoded again that a sentence already holds, at least this many characters long, is
    /// taken for its own words, mistimed, and dropped.
    static let repeatedTextMinimum = 4

    /// Audio kept for adding lead-in back to VAD segments; it must cover the longest segment
    /// a VAD emits (silero's forced cut is at 180 s).
    static let historySeconds = 200

    static func joinsWithoutSpaces(_ language: String) -> Bool {
        ["zh", "ja", "yue", "ko"].contains { language == $0 || language.hasPrefix($0 + "-") }
    }

    /// What goes between a transcript's text so far and a segment's `text`: nothing in
    /// Chinese, Japanese and Korean, a space otherwise (translations are English). Where the
    /// language is not known yet, the segment's first character tells.
    public static func separator(before text: String, language: String?, task: RecognitionOptions.Task) -> String {
        guard task == .transcribe else { return " " }
        if let language { return joinsWithoutSpaces(language) ? "" : " " }
        let first = text.unicodeScalars.first
        return first.map { $0.properties.isIdeographic || (0x3040...0x30FF).contains($0.value) || (0xAC00...0xD7AF).contains($0.value) } ?? true ? "" : " "
    }
}
