import Foundation
import Testing
import TingxieCore

/// Runs the built `tingxie` binary, as a user would.
enum CLI {
    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tingxie")

    /// Runs `tingxie arguments...`, killing it after `timeout` seconds; waits off the
    /// cooperative pool, which tests running at the same time need.
    /// Runs `tingxie` (or another `executable`) with `arguments`; ended after `timeout` seconds.
    static func run(executable: URL = binary, _ arguments: [String], timeout: TimeInterval = 300,
                    environment: [String: String] = [:]) async throws -> Output {
        try await offThePool { try runBlocking(executable, arguments, timeout: timeout, environment: environment) }
    }

    private static func runBlocking(_ executable: URL, _ arguments: [String], timeout: TimeInterval,
                                    environment: [String: String]) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: try String(contentsOf: out, encoding: .utf8),
                      stderr: try String(contentsOf: err, encoding: .utf8))
    }
}

@Suite struct CLITests {
    /// Every flag `serve` lists reads its `TINGXIE_*` variable: its name is spelled in the
    /// commands' sources where the flag is read (`--parallel` is transcribe's; serve refuses it).
    @Test func everyServeFlagReadsItsVariable() async throws {
        let help = try await CLI.run(["serve", "--help"]).stdout
        let flags = help.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  --") else { return nil }
            return line.dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "," || $0 == "<" }).first.map(String.init)
        }.filter { !["help", "version", "parallel"].contains($0) }
        let sources = try [TestData.projectRoot.appendingPathComponent("Sources/tingxie")].flatMap { folder in
            try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        } + [TestData.projectRoot.appendingPathComponent("Sources/TingxieCore/ModelLocations.swift")]
        let text = try sources.map { try String(contentsOf: $0, encoding: .utf8) }.joined()
        let missing = flags.filter { flag in
            let name = flag.uppercased().replacingOccurrences(of: "-", with: "_")
            return !text.contains("\"\(name)\"") && !text.contains("\"TINGXIE_\(name)\"")
        }
        print("serve: \(flags.count) flags, each with its TINGXIE_ variable")
        #expect(flags.count > 40)
        #expect(missing.isEmpty, "flags without a TINGXIE_ variable: \(missing)")
    }

    @Test func missingModelDirectoryIsOneClearLine() async throws {
        let result = try await CLI.run(["transcribe", "/nonexistent.wav", "--model-dir", "/nonexistent/model"])
        #expect(result.status != 0)
        #expect(result.stderr == "tingxie: model directory /nonexistent/model does not exist\n")
    }

    @Test(.enabled(if: TestData.generatedModels != nil, "needs the generated models; run `make test`"))
    func serveRefusesToStartWithABadHotwordsFile() async throws {
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try #require(TestData.generatedModels).appendingPathComponent("transducer-tiny").path
        let serve = ["serve", "--model-dir", model, "--data-dir", directory.appendingPathComponent("data").path, "--port", "0", "--workers", "1"]
        let missing = try await CLI.run(serve + ["--hotwords-file", "/nonexistent/terms.txt"], timeout: 60)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read hotwords file /nonexistent/terms.txt"))
        let file = directory.appendingPathComponent("terms.txt")
        try Data("鲲鹏处理器 2\n飞桨 99\n".utf8).write(to: file)
        let bad = try await CLI.run(serve, timeout: 60, environment: ["TINGXIE_HOTWORDS_FILE": file.path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("terms.txt: hotword \"飞桨 99\" has weight 99.0; weights go from 0.1 to 10.0"))
    }

    /// A truncated file fails `transcribe` (non-zero, saying how much was readable) unless
    /// `--allow-partial`, which transcribes the readable part and warns on stderr.
    @Test(.enabled(if: TestData.generatedModels != nil && TestData.vadModel != nil && TestData.corpus != nil,
                   "needs the generated models, the VAD model and the corpus; run `make test`"))
    func aTruncatedFileFailsTranscribeUnlessPartialIsAllowed() async throws {
        let models = try #require(TestData.generatedModels)
        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let whole = try Data(contentsOf: try #require(TestData.corpus).appendingPathComponent("formats/003.flac"))
        let cut = directory.appendingPathComponent("cut.flac")
        try whole.prefix(whole.count / 3).write(to: cut)
        let tiny = ["--model-dir", models.appendingPathComponent("paraformer-tiny").path, "--quiet"]
        let refused = try await CLI.run(["transcribe", cut.path] + tiny)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("the audio ends after 1.3 s of the 5.0 s"), "\(refused.stderr)")
        let allowed = try await CLI.run(["transcribe", cut.path, "--allow-partial"] + tiny)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stderr.hasPrefix("tingxie: warning: cut.flac: the audio ends after"), "\(allowed.stderr)")
    }

    /// A model without punctuation gets it from --punctuation-model; a broken one is refused with
    /// a message, never a crash.
    @Test(.enabled(if: TestData.generatedModels != nil && TestData.vadModel != nil && TestData.corpus != nil,
                   "needs the generated models, the VAD model and the corpus; run `make test`"))
    func punctuationModelPunctuatesAModelThatGivesNone() async throws {
        let models = try #require(TestData.generatedModels)
        let speech = try #require(TestData.corpus).appendingPathComponent("001.wav").path
        let tiny = ["--model-dir", models.appendingPathComponent("paraformer-tiny").path, "--quiet"]
        let plain = try await CLI.run(["transcribe", speech] + tiny)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.hasPrefix("好好") && !plain.stdout.contains("。"))
        let punctuated = try await CLI.run(["transcribe", speech, "--punctuation-model", models.appendingPathComponent("punctuation-tiny").path] + tiny)
        #expect(punctuated.status == 0, "\(punctuated.stderr)")
        // The generated punctuation model adds no mark after 好; sherpa-onnx ends each sentence.
        let text = punctuated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.hasSuffix("。"))
        #expect(text.replacingOccurrences(of: "。", with: "") == plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let broken = try await CLI.run(["transcribe", speech, "--punctuation-model", models.appendingPathComponent("punctuation-no-metadata").path] + tiny)
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("is not a CT-Transformer punctuation model for sherpa-onnx"), "\(broken.stderr)")
    }

    @Test(.enabled(if: TestData.generatedModels != nil && TestData.vadModel != nil, "needs the generated models and the VAD model; run `make test`"))
    func badModelAndBadFilesFailOneByOne() async throws {
        let models = try #require(TestData.generatedModels)
        let corrupt = try await CLI.run(["transcribe", "x.wav", "--model-dir", models.appendingPathComponent("paraformer-corrupt").path])
        #expect(corrupt.status != 0)
        #expect(corrupt.stderr.contains("not a valid ONNX model"))

        let directory = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("tone.wav")
        try WAVFixture.file(WAVFixture.sine(frequency: 300, seconds: 1, sampleRate: 16_000), sampleRate: 16_000).write(to: good)
        let text = directory.appendingPathComponent("notes.txt")
        try Data("not audio".utf8).write(to: text)
        let empty = directory.appendingPathComponent("empty.wav")
        try Data().write(to: empty)
        let result = try await CLI.run(["transcribe", good.path, text.path, empty.path, "/nonexistent/missing.wav",
                                  "--model-dir", models.appendingPathComponent("paraformer-tiny").path, "--quiet"])
        #expect(result.status == 1)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tingxie: ") }
        #expect(errors.count == 3)
        #expect(result.stderr.contains("notes.txt: not an audio or video file Tingxie can read"))
        #expect(result.stderr.contains("empty.wav: the file is empty"))
        #expect(result.stderr.contains("missing.wav: no such file or not readable"))
        #expect(result.stderr.contains("1 succeeded, 3 failed"))
        #expect(result.stdout.contains("==> \(good.path) <=="))
    }

    @Test(.enabled(if: TestData.realModelsAvailable, TestData.skipReason))
    func transcribesToStdoutAndToFiles() async throws {
        let corpus = try #require(TestData.corpus)
        let model = try #require(TestData.whisperBase).path
        let single = try await CLI.run(["transcribe", corpus.appendingPathComponent("005.wav").path, "--model-dir", model])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout.contains("手机"))

        let output = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: output) }
        let files = ["003.wav", "formats/012_44k1_stereo.wav"].map { corpus.appendingPathComponent($0).path }
        let batch = try await CLI.run(["transcribe"] + files + ["--model-dir", model, "--format", "srt", "--output-dir", output.path, "--jobs", "2"])
        #expect(batch.status == 0, "\(batch.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(written == ["003.srt", "012_44k1_stereo.srt"])
        for name in written {
            let cues = try SubtitleParser.parseSRT(String(contentsOf: output.appendingPathComponent(name), encoding: .utf8))
            #expect(!cues.isEmpty)
        }
    }

    @Test(.enabled(if: TestData.realModelsAvailable, TestData.skipReason))
    func hotwordsAreAppliedAndReportedInJSON() async throws {
        let root = try #require(TestData.root)
        let model = try #require(TestData.whisperBase).path
        let audio = root.appendingPathComponent("corpus/zh-tts-hotwords/004.wav").path
        let result = try await CLI.run(["transcribe", audio, "--model-dir", model, "--format", "json", "--hotwords", "涠洲岛,鼓浪屿 2"])
        #expect(result.status == 0, "\(result.stderr)")
        let transcript = try JSONDecoder().decode(Transcript.self, from: Data(result.stdout.utf8))
        #expect(transcript.text.contains("涠洲岛"))
        let application = try #require(transcript.segments.first?.hotwords?.first)
        #expect(application.hotword == "涠洲岛")
        #expect(application.original != "涠洲岛")

        let bad = try await CLI.run(["transcribe", audio, "--model-dir", model, "--hotwords", "涠洲岛 99"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--hotwords: hotword \"涠洲岛 99\" has weight 99.0"))
    }

    @Test(.enabled(if: TestData.realModelsAvailable && TestData.espeak != nil, "needs the real models and espeak-ng; run `make test`"))
    func detectsTheLanguageAndTranslates() async throws {
        let folder = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try #require(TestData.whisperBase).path
        let english = try await TestData.englishSpeech(in: folder).path
        let mandarin = try #require(TestData.corpus).appendingPathComponent("005.wav").path
        let detected = try await CLI.run(["transcribe", english, mandarin, "--model-dir", model, "--language", "auto",
                                          "--format", "json", "--output-dir", folder.path, "--quiet"])
        #expect(detected.status == 0, "\(detected.stderr)")
        let inEnglish = try JSONDecoder().decode(Transcript.self, from: Data(contentsOf: folder.appendingPathComponent("english.json")))
        #expect(inEnglish.language == "en" && inEnglish.text.lowercased().contains("lazy dog"), "\(inEnglish.text)")
        let inChinese = try JSONDecoder().decode(Transcript.self, from: Data(contentsOf: folder.appendingPathComponent("005.json")))
        #expect(inChinese.language == "zh" && inChinese.text.contains("手机"), "\(inChinese.text)")

        let translated = try await CLI.run(["transcribe", mandarin, "--model-dir", model, "--translate", "--format", "json", "--quiet"])
        #expect(translated.status == 0, "\(translated.stderr)")
        let translation = try JSONDecoder().decode(Transcript.self, from: Data(translated.stdout.utf8))
        #expect(translation.task == .translate && translation.language == "zh")
        #expect(!translation.text.isEmpty && !translation.text.unicodeScalars.contains { $0.properties.isIdeographic }, "\(translation.text)")

        let paraformer = try #require(TestData.tinyModel).path
        let refused = try await CLI.run(["transcribe", mandarin, "--model-dir", paraformer, "--language", "auto", "--quiet"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("cannot detect the language"), "\(refused.stderr)")
    }
}
