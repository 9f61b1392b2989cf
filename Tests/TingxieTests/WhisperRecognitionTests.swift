import Foundation
import NIOPosix
import Synchronization
import Testing
import TingxieAudio
import TingxieCore
import TingxiePipeline
@testable import TingxieSherpa
import TingxieText

/// The corpus sentences through the whole pipeline (silero VAD) with `recognizer`, paired with
/// their reference transcripts.
func corpusTranscripts(_ recognizer: any Recognizer) async throws -> [(hypothesis: String, reference: String)] {
    let corpus = try #require(TestData.corpus)
    return try await withThreadPool { threadPool in
        let pipeline = try WhisperRecognitionTests.pipeline(threadPool: threadPool, recognizer: recognizer)
        var pairs: [(hypothesis: String, reference: String)] = []
        for (id, reference) in try TestData.transcripts(corpus) {
            pairs.append((try await pipeline.transcribe(corpus.appendingPathComponent("\(id).wav")).text, reference))
        }
        return pairs
    }
}

/// Real recognition with Whisper base on the zh-tts corpus.
@Suite(.enabled(if: TestData.realModelsAvailable, TestData.skipReason), .serialized)
struct WhisperRecognitionTests {
    static let recognizer: SherpaRecognizer? = TestData.whisperBase.flatMap {
        try? SherpaRecognizer(directory: ModelDirectory.detect($0), configuration: .init(threads: 2))
    }

    /// The pipeline with the silero VAD over `recognizer` (default: the shared Whisper base).
    static func pipeline(threadPool: NIOThreadPool, recognizer: (any Recognizer)? = nil) throws -> TranscriptionPipeline {
        try TranscriptionPipeline(
            recognizer: try #require(recognizer ?? Self.recognizer),
            detectors: try SileroVADFactory(configuration: .init(model: try #require(TestData.vadModel))),
            threadPool: threadPool
        )
    }

    @Test func detectsWhisperLayoutAndPrefersInt8() throws {
        let directory = try ModelDirectory.detect(try #require(TestData.whisperBase))
        #expect(directory.family == .whisper)
        #expect(directory.encoder?.lastPathComponent == "base-encoder.int8.onnx")
        #expect(directory.decoder?.lastPathComponent == "base-decoder.int8.onnx")
        #expect(directory.tokens.lastPathComponent == "base-tokens.txt")
    }

    /// The foundation's promise: the 30 corpus sentences through the whole pipeline (WAV
    /// decoding, VAD, Whisper, Traditional->Simplified) at a CER of at most 12%.
    @Test func corpusCharacterErrorRate() async throws {
        let pairs = try await corpusTranscripts(try #require(Self.recognizer))
        let cer = ErrorRate.characterErrorRate(pairs)
        print("pipeline whisper-base CER over \(pairs.count) sentences: \(String(format: "%.2f%%", cer * 100))")
        #expect(pairs.count == 30)
        #expect(cer <= 0.12)
    }

    /// Several streams decoded at once on one shared recogniser give the same text as one at a time.
    @Test func concurrentDecodesMatchSequential() async throws {
        let recognizer = try #require(Self.recognizer)
        let corpus = try #require(TestData.corpus)
        let inputs = try ["001", "005", "012", "024"].map { try TestData.samples(corpus.appendingPathComponent("\($0).wav")) }
        let sequential = try inputs.map { try recognizer.recognize($0).text }
        let concurrent = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (index, samples) in inputs.enumerated() {
                group.addTask {
                    // Plain threads, so that the four decodes really overlap.
                    try await withCheckedThrowingContinuation { continuation in
                        Thread { continuation.resume(with: Result { (index, try recognizer.recognize(samples).text) }) }.start()
                    }
                }
            }
            var texts = [String](repeating: "", count: inputs.count)
            for try await (index, text) in group { texts[index] = text }
            return texts
        }
        let batched = try recognizer.recognize(batch: inputs).map(\.text)
        #expect(sequential.allSatisfy { !$0.isEmpty })
        #expect(concurrent == sequential)
        #expect(batched == sequential)
    }

    /// A batch decoded side by side (one thread per piece) gives each piece its own text, in order,
    /// as one piece at a time on the same recogniser does.
    @Test func aBatchDecodedSideBySideKeepsEachPiecesText() throws {
        let recognizer = try SherpaRecognizer(directory: ModelDirectory.detect(try #require(TestData.whisperBase)),
                                              configuration: .init(threads: 1, parallelDecodes: 2))
        let corpus = try #require(TestData.corpus)
        // Lengths differ, so that the two threads finish their pieces at different times.
        let inputs = try ["003", "001", "017", "009", "024"].map { try TestData.samples(corpus.appendingPathComponent("\($0).wav")) }
        let oneByOne = try inputs.map { try recognizer.recognize($0).text }
        #expect(Set(oneByOne).count == inputs.count)
        #expect(try recognizer.recognize(batch: inputs).map(\.text) == oneByOne)
    }

    /// Whisper's language and task live in the recogniser: requests in different languages on
    /// one shared recogniser, at once, each get their own, as if run alone.
    @Test(.enabled(if: TestData.espeak != nil, "needs espeak-ng from scripts/setup --test; run `make test`"))
    func concurrentDecodesInDifferentLanguagesKeepTheirOwn() async throws {
        try await Self.languagesKeepTheirOwn(try #require(Self.recognizer))
    }

    /// English, Mandarin, Mandarin translated and English detected, each alone and then all
    /// twice at once on one recogniser: every request gets its own language and the text it
    /// got alone.
    static func languagesKeepTheirOwn(_ recognizer: any Recognizer) async throws {
        let folder = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let english = try AudioDecoder.open(try await TestData.englishSpeech(in: folder))
        defer { english.close() }
        var englishSamples: [Float] = []
        while let chunk = try english.nextChunk() { englishSamples += chunk }
        let mandarin = try TestData.samples(try #require(TestData.corpus).appendingPathComponent("002.wav"))
        let requests: [([Float], RecognitionOptions)] = [
            (englishSamples, RecognitionOptions(language: "en")), (mandarin, RecognitionOptions(language: "zh")),
            (mandarin, RecognitionOptions(language: "zh", task: .translate)), (englishSamples, RecognitionOptions(language: ModelInfo.detect)),
        ]
        let alone = try requests.map { try recognizer.recognize(batch: [$0.0], hotwords: [], options: $0.1)[0] }
        #expect(alone.map(\.language) == ["en", "zh", "zh", "en"])
        #expect(alone[1].text.unicodeScalars.contains { $0.properties.isIdeographic })
        #expect(!alone[2].text.unicodeScalars.contains { $0.properties.isIdeographic }, "translated: \(alone[2].text)")
        let together = try await withThrowingTaskGroup(of: (Int, RecognitionResult).self) { group in
            for _ in 0..<2 {
                for (index, request) in requests.enumerated() {
                    group.addTask {
                        try await withCheckedThrowingContinuation { continuation in
                            Thread {
                                continuation.resume(with: Result { (index, try recognizer.recognize(batch: [request.0], hotwords: [], options: request.1)[0]) })
                            }.start()
                        }
                    }
                }
            }
            var results: [[RecognitionResult]] = Array(repeating: [], count: requests.count)
            for try await (index, result) in group { results[index].append(result) }
            return results
        }
        for (index, results) in together.enumerated() {
            #expect(results.count == 2 && results.allSatisfy { $0 == alone[index] }, "request \(index): \(results.map(\.text)) alone: \(alone[index].text)")
        }
    }
}

/// Whisper's byte-level tokens put together into whole characters.
struct WhisperTextTests {
    @Test func tokensEndingInsideACharacterJoinTheTokensThatCompleteIt() {
        let ni = Array("你".utf8), hao = Array("好".utf8)
        // "今天" whole, "你" over two tokens, the second also bringing "好"'s first byte, then the rest.
        let tokens = [Array("今天".utf8), Array(ni[0..<1]), Array(ni[1...]) + hao[0..<1], Array(hao[1...]), Array(" OK".utf8)]
        let (units, times) = WhisperText.characters(tokens, timestamps: [0.0, 0.5, 0.7, 0.9, 1.2])
        #expect(units == ["今天", "你好", " OK"])
        #expect(times == [0.0, 0.5, 1.2])
        // Without times (or with a count that does not match) the units come alone.
        #expect(WhisperText.characters(tokens, timestamps: [0.0]) == (["今天", "你好", " OK"], []))
        // Bytes that never complete a character end the text as it shows them.
        #expect(WhisperText.characters([Array("好".utf8), Array(ni[0..<2])], timestamps: []).tokens == ["好", "\u{FFFD}"])
        #expect(WhisperText.characters([[], Array("a".utf8)], timestamps: [0.1, 0.2]) == (["a"], [0.2]))
    }
}
