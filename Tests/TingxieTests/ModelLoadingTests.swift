import Foundation
import Testing
import TingxieCore
import TingxieSherpa

/// The model loading path, on tiny Paraformer-signature models that scripts/make-test-models.py
/// generates (`make test` writes them to TINGXIE_TEST_MODELS).
@Suite(.enabled(if: TestData.generatedModels != nil, "needs TINGXIE_TEST_MODELS from scripts/make-test-models.py; run `make test`"))
struct ModelLoadingTests {
    func folder(_ name: String) throws -> URL {
        try #require(TestData.generatedModels).appendingPathComponent(name)
    }

    @Test func tinyParaformerLoadsAndDecodes() throws {
        let directory = try ModelDirectory.detect(try folder("paraformer-tiny"))
        #expect(directory.family == .paraformer)
        let recognizer = try SherpaRecognizer(directory: directory, configuration: .init(threads: 1))
        #expect(recognizer.info.family == "paraformer")
        // The generated model emits "好" for every LFR frame (7 frames stacked, shift 6): one
        // second of audio is 98 fbank frames, so 17 tokens.
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<16_000).map { _ in Float.random(in: -0.3...0.3, using: &generator) }
        let results = try recognizer.recognize(batch: [noise, []])
        #expect(results.count == 2)
        #expect(results[0].tokens == Array(repeating: "好", count: 17))
        #expect(results[0].text == String(repeating: "好", count: 17))
        #expect(results[1].text.isEmpty)
        // Half a second: 48 fbank frames, 8 LFR frames.
        #expect(try recognizer.recognize(Array(noise.prefix(8_000))).tokens.count == 8)
    }

    @Test func missingMetadataIsAnErrorNotAnExit() throws {
        let error = try #require(throws: TingxieError.self) {
            try ModelDirectory.detect(try folder("paraformer-no-metadata"))
        }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("missing vocab_size, lfr_window_size, lfr_window_shift, neg_mean, inv_stddev"))
    }

    @Test func corruptModelIsAnError() throws {
        let error = try #require(throws: TingxieError.self) {
            try ModelDirectory.detect(try folder("paraformer-corrupt"))
        }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("not a valid ONNX model"))
    }

    @Test func missingDirectoryIsAnError() throws {
        let error = try #require(throws: TingxieError.self) {
            try ModelDirectory.detect(URL(fileURLWithPath: "/nonexistent/tingxie-model"))
        }
        #expect(error.code == .modelNotFound)
    }

    @Test func unrecognisedFolderListsWhatWasFoundAndExpected() throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("hello".utf8).write(to: directory.appendingPathComponent("README.md"))
        try Data("a 0\n".utf8).write(to: directory.appendingPathComponent("tokens.txt"))
        let error = try #require(throws: TingxieError.self) { try ModelDirectory.detect(directory) }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("found: README.md, tokens.txt"))
        #expect(error.message.contains("Whisper: *-encoder*.onnx"))
    }

    @Test func prefersInt8AndLooksIntoASingleSubfolder() throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let inner = root.appendingPathComponent("sherpa-onnx-paraformer-zh-2024")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        let tiny = try folder("paraformer-tiny")
        for name in ["model.onnx", "model.int8.onnx"] {
            try FileManager.default.copyItem(at: tiny.appendingPathComponent("model.onnx"), to: inner.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: tiny.appendingPathComponent("tokens.txt"), to: inner.appendingPathComponent("tokens.txt"))
        let directory = try ModelDirectory.detect(root)
        #expect(directory.model?.lastPathComponent == "model.int8.onnx")
        #expect(directory.url.lastPathComponent == "sherpa-onnx-paraformer-zh-2024")
    }
}
