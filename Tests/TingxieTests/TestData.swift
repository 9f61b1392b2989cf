import Foundation
import NIOPosix
import Testing
import TingxieAudio
import TingxieCore

/// Locates the shared test data (`make test` sets TINGXIE_TEST_DATA to ../shared) and the
/// VAD model that scripts/setup installs.
enum TestData {
    static let root: URL? = ProcessInfo.processInfo.environment["TINGXIE_TEST_DATA"]
        .flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        .flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }

    /// Tiny generated models (scripts/make-test-models.py; `make test` sets TINGXIE_TEST_MODELS).
    static let generatedModels: URL? = ProcessInfo.processInfo.environment["TINGXIE_TEST_MODELS"]
        .flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }

    /// The checkout this test was built from.
    static let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Python packages the tests use (`scripts/setup --test` installs them here).
    static var pythonTools: URL { projectRoot.appendingPathComponent(".deps/python") }

    /// The generated random-weight Paraformer: loads fast, transcribes nonsense.
    static let tinyModel = generatedModels?.appendingPathComponent("paraformer-tiny")
    static let tinyModelAvailable = tinyModel != nil && vadModel != nil
    static let tinyModelReason: Comment = "needs the generated test models and the VAD model; run `make test`"

    static let openAISDKAvailable = realModelsAvailable
        && FileManager.default.fileExists(atPath: pythonTools.appendingPathComponent("openai").path)

    static var whisperBase: URL? { root?.appendingPathComponent("models/whisper-base") }
    static var corpus: URL? { root?.appendingPathComponent("corpus/zh-tts") }

    /// silero_vad.onnx from scripts/setup (TINGXIE_MODELS_DIR).
    static var vadModel: URL? {
        let url = ModelLocations.vadModel()
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Whether the real-model tests can run; they are skipped with this reason otherwise.
    static let realModelsAvailable = root != nil && vadModel != nil

    static let skipReason: Comment = "needs TINGXIE_TEST_DATA (../shared with models/whisper-base) and the VAD model from scripts/setup; run `make test`"

    /// `id -> text` from a corpus transcripts.tsv.
    static func transcripts(_ corpus: URL) throws -> [(id: String, text: String)] {
        let text = try String(contentsOf: corpus.appendingPathComponent("transcripts.tsv"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", maxSplits: 1)
            return fields.count == 2 ? (String(fields[0]), String(fields[1])) : nil
        }
    }

    /// Reads a whole file as 16 kHz mono samples.
    static func samples(_ url: URL) throws -> [Float] {
        try WAVReader(url: url).readAll()
    }

    /// Debian's espeak-ng (scripts/setup --test), to make English speech.
    static let espeak: URL? = ["/usr/bin/espeak-ng", "/usr/local/bin/espeak-ng"].map(URL.init(fileURLWithPath:))
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    /// The sentence `englishSpeech` says.
    static let englishSentence = "The quick brown fox jumps over the lazy dog. Please send the contract to the legal department before Friday."

    /// `englishSentence` spoken by espeak-ng into a WAV file in `folder`.
    static func englishSpeech(in folder: URL) async throws -> URL {
        let espeak = try #require(espeak, "espeak-ng is not installed; run `make test`")
        let url = folder.appendingPathComponent("english.wav")
        let result = try await CLI.run(executable: espeak, ["-v", "en-us", "-s", "150", "-w", url.path, englishSentence], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        return url
    }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tingxie-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs one of the Python fixture scripts with the test tools on its path; returns its exit
/// status and what it printed on stdout. It waits off the cooperative pool (a browser session
/// takes a minute).
func runPythonFixture(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: Data) {
    try await offThePool { try runPythonFixtureBlocking(script, arguments) }
}

private func runPythonFixtureBlocking(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", TestData.projectRoot.appendingPathComponent("Tests/TingxieTests/Fixtures/\(script)").path] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["PYTHONPATH": TestData.pythonTools.path]) { $1 }
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}

/// Runs blocking work (a subprocess, a blocking read) on NIO's thread pool, off Swift's
/// cooperative pool, which other tests running at the same time need.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}

/// Runs `body` with a started thread pool and shuts it down afterwards.
func withThreadPool<T>(threads: Int = 1, _ body: (NIOThreadPool) async throws -> T) async throws -> T {
    let pool = NIOThreadPool(numberOfThreads: threads)
    pool.start()
    do {
        let result = try await body(pool)
        try await pool.shutdownGracefully()
        return result
    } catch {
        try? await pool.shutdownGracefully()
        throw error
    }
}
