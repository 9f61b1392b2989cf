import Foundation
import Testing
import TingxieAudio
import TingxieText

/// The web UI in a real headless Chromium (Debian's chromium and chromium-driver, Selenium from
/// PyPI), against the real server with Whisper base. Screenshots go to test-output/webui/.
@Suite(.serialized) struct WebUITests {
    static let available = TestData.realModelsAvailable
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        && FileManager.default.fileExists(atPath: TestData.pythonTools.appendingPathComponent("selenium").path)

    /// Without and with an API key: with one, the page opens, asks for the key, and then works
    /// the same (the live tab sends it as a WebSocket subprotocol).
    @Test(.enabled(if: available, "needs the real models, chromium and chromium-driver, and selenium from scripts/setup --test; run `make test`"),
          arguments: [nil, "ui-test-key"] as [String?])
    func everyTabWorksInABrowser(key: String?) async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let corpus = try #require(TestData.corpus)
        let server = try await ServerProcess(dataDirectory: root.appendingPathComponent("data"), model: try #require(TestData.whisperBase),
                                             arguments: ["--max-duration", "20"] + (key.map { ["--api-key", $0] } ?? []))
        // 30 s of audio, over the server's 20 s limit.
        let long = root.appendingPathComponent("long.wav")
        let longWriter = try WAVWriter(url: long)
        try longWriter.append([Float](repeating: 0.01, count: 30 * modelSampleRate))
        try longWriter.finish()
        // The fake microphone: a sentence, then a pause that ends it.
        let microphone = root.appendingPathComponent("microphone.wav")
        let micWriter = try WAVWriter(url: microphone)
        try micWriter.append(try TestData.samples(corpus.appendingPathComponent("001.wav")) + [Float](repeating: 0, count: 24_000))
        try micWriter.finish()
        let screenshots = TestData.projectRoot.appendingPathComponent(key == nil ? "test-output/webui" : "test-output/webui-key")

        let hotwordCorpus = try #require(TestData.root).appendingPathComponent("corpus/zh-tts-hotwords")
        let (_, data) = try await runPythonFixture("webui_test.py", [server.baseURL, corpus.path, hotwordCorpus.appendingPathComponent("004.wav").path,
                                                               "涠洲岛", long.path, microphone.path, screenshots.path] + (key.map { [$0] } ?? []))
        let results = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        #expect(results["error"] == nil, "\(results["error"] ?? "")")
        print("web UI: screenshots in \(screenshots.path)")

        #expect(results["tabs"] as? [String] == ["单文件识别", "批量处理", "实时录音", "系统信息"])
        #expect(results["asked_for_key"] as? Bool == (key == nil ? nil : true))
        let expected = try TestData.transcripts(corpus)
        let single = (results["single"] as? [String] ?? []).joined()
        let sentence = try TestData.transcripts(hotwordCorpus).first { $0.id == "004" }!.text
        #expect(ErrorRate.characterErrorRate([(single, sentence)]) < 0.25, "\(single)")
        #expect((results["single_times"] as? [String])?.first?.contains("–") == true)
        // Whisper hears the island's name wrong; the text stage puts it right and the page marks it.
        #expect(results["single_marks"] as? [String] == ["涠洲岛"])
        #expect((results["single_mark_titles"] as? [String])?.first?.hasPrefix("热词，原为") == true)
        #expect(results["history_rows"] as? Int == 1)

        #expect((results["limit_message"] as? String)?.contains("超过服务器上限") == true)
        #expect(results["jobs_before_limit"] as? Int == results["jobs_after_limit"] as? Int, "the long file was uploaded")

        #expect(results["batch"] as? [String] == Array(repeating: "status-succeeded", count: 3))
        #expect(results["batch_download_enabled"] as? Bool == true)

        let live = (results["live"] as? [String] ?? []).joined()
        #expect(ErrorRate.characterErrorRate([(live, expected.first { $0.id == "001" }!.text)]) < 0.35, "\(live)")
        print("web UI live tab: partial lines seen \(results["live_partials"] ?? []), \(results["live_first_words"] ?? [])")

        #expect((results["system_cards"] as? [String])?.count == 7)
        #expect(results["english_tabs"] as? [String] == ["Single file", "Batch", "Live recording", "System"])
        #expect(results["console"] as? [String] == [], "browser errors: \(results["console"] ?? "")")
    }
}
