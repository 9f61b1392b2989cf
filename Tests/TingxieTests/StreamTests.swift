import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import Testing
import TingxieCore
import TingxiePipeline
import TingxieServer

/// Text messages received so far.
final class Inbox: Sendable {
    let texts = Mutex<[String]>([])
    /// When each text arrived.
    let arrivals = Mutex<[ContinuousClock.Instant]>([])
    var count: Int { texts.withLock { $0.count } }
}

/// A FunASR-protocol client for the tests: sends a config, audio and the end flag, and
/// collects what the server says.
struct StreamClient {
    let port: Int

    /// 16-bit PCM of `bursts` (start, end seconds) of a 300 Hz tone in `seconds` of silence.
    static func pcm(seconds: Double, bursts: [(Double, Double)], rate: Int = 16_000) -> Data {
        var data = Data()
        for index in 0..<Int(seconds * Double(rate)) {
            let t = Double(index) / Double(rate)
            let loud = bursts.contains { t >= $0.0 && t < $0.1 }
            let value = loud ? Int16(0.3 * 32767 * sin(2 * .pi * 300 * t)) : 0
            withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// 16-bit little-endian PCM of `samples` (clipped to -1...1), as a client streams recorded audio.
    static func pcm(_ samples: [Float]) -> Data {
        var data = Data(capacity: samples.count * 2)
        // Rounded as `WAVFixture.file` rounds: a file of the same samples holds the same bytes.
        for sample in samples { withUnsafeBytes(of: Int16((max(-1, min(1, sample)) * 32767).rounded()).littleEndian) { data.append(contentsOf: $0) } }
        return data
    }

    /// Sends `config` and the end flag; the first text answer goes to `received`.
    func send(config: String, into received: Inbox) async throws {
        var logger = Logger(label: "ws-test")
        logger.logLevel = .error
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text(config))
            try await outbound.write(.text(#"{"is_speaking": false}"#))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case .text(let text) = message { received.texts.withLock { $0.append(text) } }
                break
            }
        }
    }

    /// Runs one conversation. `beforeEnd` is awaited after the audio and before the end flag;
    /// `pace` is waited after each chunk.
    func converse(first: WebSocketOutboundWriter.OutboundFrame, audio: Data = Data(), chunkBytes: Int = 3200, pace: Duration? = nil,
                  beforeEnd: @escaping @Sendable (Inbox) async throws -> Void = { _ in }) async throws -> [[String: Any]] {
        let received = Inbox()
        var logger = Logger(label: "ws-test")
        logger.logLevel = .error
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", logger: logger) { inbound, outbound, _ in
            try await outbound.write(first)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Read while sending, so that each message's arrival is when the server sent it.
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message {
                            received.texts.withLock { $0.append(text) }
                            received.arrivals.withLock { $0.append(.now) }
                        }
                        if let last = received.texts.withLock({ $0.last }), last.contains("\"is_end\":true") { break }
                    }
                }
                var offset = 0
                while offset < audio.count {
                    let end = min(offset + chunkBytes, audio.count)
                    try await outbound.write(.binary(ByteBuffer(bytes: audio[offset..<end])))
                    offset = end
                    if let pace { try await Task.sleep(for: pace) }
                }
                try await beforeEnd(received)
                try? await outbound.write(.text(#"{"is_speaking": false}"#))
                try await group.waitForAll()
            }
        }
        return received.texts.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

/// Says the start of one sentence, a character per 0.25 s of audio it is given: re-recognising a
/// growing sentence gives a growing text, as a real model's would.
final class PrefixRecognizer: Recognizer {
    static let sentence = "今天上午九点半我们在三号会议室开会"
    let info = ModelInfo(family: "fake", name: "prefix", emitsTraditional: false, maxSegmentSeconds: 30)

    func recognize(batch: [[Float]], hotwords: [Hotword], options: RecognitionOptions) throws -> [RecognitionResult] {
        batch.map { RecognitionResult(text: String(Self.sentence.prefix($0.count / 4000))) }
    }
}

@Suite struct StreamTests {
    /// While a sentence is spoken, its text so far arrives in partial messages that carry only
    /// newly agreed text; the sentence's final message settles it (2pass replaces the partials,
    /// online sends only what they lacked).
    @Test(arguments: ["2pass", "online"])
    func partialsComeWhileTheSentenceIsSpoken(mode: String) async throws {
        try await withTestServer(recognizer: PrefixRecognizer(), testing: .live) { client, _ in
            // One 4-second sentence, sent at four times real time.
            let audio = StreamClient.pcm(seconds: 5, bursts: [(0.2, 4.2)])
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "\#(mode)", "wav_name": "mic", "is_speaking": true}"#), audio: audio, pace: .milliseconds(25))
            let results = Array(messages.dropLast())
            // Sentences carry their times; partials do not.
            let finals = results.indices.filter { results[$0]["start_time"] != nil }
            let partials = results.filter { $0["start_time"] == nil }
            #expect(finals.count == 1, "\(messages)")
            #expect(partials.count >= 3, "\(messages)")
            #expect(finals.first == results.count - 1, "every partial comes before its sentence")
            #expect(partials.allSatisfy { $0["mode"] as? String == (mode == "2pass" ? "2pass-online" : "online") && $0["is_final"] as? Bool == false })
            let final = try #require(results.last)
            #expect(final["mode"] as? String == (mode == "2pass" ? "2pass-offline" : "online"))
            let shown = partials.compactMap { $0["text"] as? String }.joined()
            #expect(!shown.isEmpty && PrefixRecognizer.sentence.hasPrefix(shown), "\(shown)")
            if mode == "2pass" {
                #expect(final["text"] as? String == PrefixRecognizer.sentence)
            } else {
                #expect(shown + (final["text"] as? String ?? "") == PrefixRecognizer.sentence, "what an online client shows")
            }
        }
    }

    /// `serve --live-partial-share 0`: sentences only, and `/v1/system` says so.
    @Test func aPartialShareOfZeroSendsSentencesOnly() async throws {
        try await withTestServer(recognizer: PrefixRecognizer(), testing: .live, setup: { $0.livePartialShare = 0 }) { client, _ in
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "2pass", "wav_name": "mic", "is_speaking": true}"#),
                audio: StreamClient.pcm(seconds: 5, bursts: [(0.2, 4.2)]), pace: .milliseconds(25))
            #expect(messages.count == 2 && messages.allSatisfy { $0["mode"] as? String == "2pass-offline" }, "\(messages)")
            #expect(messages.last?["is_end"] as? Bool == true)
            #expect(messages.first?["text"] as? String == PrefixRecognizer.sentence)
            let live = try #require(try await client.get("/v1/system").json["live"] as? [String: Any])
            #expect(live["partials"] as? Bool == false && live["partial_max_share"] as? Double == 0)
            #expect((live["reason"] as? String)?.contains("--live-partial-share") == true)
        }
    }

    /// FunASR's `chunk_size` sets how much speech comes between two recognitions of the open
    /// sentence: `chunk_size[1]` x 60 ms, as FunASR's server decodes its streaming model.
    @Test func chunkSizeSetsHowOftenTheOpenSentenceIsRecognised() async throws {
        let recognizer = FakeRecognizer()
        try await withTestServer(recognizer: recognizer, testing: .live) { client, _ in
            /// The recognitions of one 4-second sentence sent at four times real time, less the sentence's own.
            func partialRecognitions(chunkSize: String) async throws -> Int {
                let before = recognizer.calls.withLock { $0.count }
                let messages = try await StreamClient(port: client.port!).converse(
                    first: .text(#"{"mode": "2pass", "wav_name": "mic", "is_speaking": true, "chunk_interval": 10, "chunk_size": \#(chunkSize)}"#),
                    audio: StreamClient.pcm(seconds: 5, bursts: [(0.2, 4.2)]), pace: .milliseconds(25))
                #expect(messages.filter { $0["start_time"] != nil }.count == 1, "\(messages)")
                return recognizer.calls.withLock { $0.count } - before - 1
            }
            let often = try await partialRecognitions(chunkSize: "[5, 5, 5]")      // every 0.3 s
            let seldom = try await partialRecognitions(chunkSize: #""0,20,5""#)    // every 1.2 s, as a string
            #expect(seldom >= 1 && seldom <= 3, "4 s of speech in steps of 1.2 s: \(seldom)")
            #expect(often >= 2 * seldom + 2, "steps of 0.3 s: \(often) against \(seldom)")
        }
    }

    /// `chunk_size` and `chunk_interval` are checked like every number a client sends.
    @Test func chunkSettingsAreRangeChecked() throws {
        func interval(_ fields: String) throws -> Double? {
            try FunASRConfig(json: #"{"mode": "2pass", \#(fields)}"#, defaultSampleRate: 16_000).partialIntervalSeconds
        }
        #expect(try interval(#""chunk_size": [5, 10, 5], "chunk_interval": 10"#).map { abs($0 - 0.6) < 1e-9 } == true)
        #expect(try interval(#""chunk_size": " 0, 8 ,4""#).map { abs($0 - 0.48) < 1e-9 } == true)
        #expect(try interval(#""chunk_interval": 10"#) == nil)
        for bad in [#""chunk_size": [5, 0, 5]"#, #""chunk_size": [5, -10, 5]"#, #""chunk_size": [5, 10]"#, #""chunk_size": [5, 10.5, 5]"#,
                    #""chunk_size": [5, 1e300, 5]"#, #""chunk_size": "a,b,c""#, #""chunk_size": {"x": 1}"#, #""chunk_size": [5, "10", 5]"#,
                    #""chunk_size": [5, 10, 5, 5]"#, #""chunk_interval": 0"#, #""chunk_interval": [10, 10]"#, #""chunk_interval": "often""#] {
            let error = #expect(throws: TingxieError.self, "\(bad)") { try interval(bad) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("chunk_") == true, "\(error?.message ?? "")")
        }
    }

    @Test func offlineModeAnswersOnceWithTimestampsAndSentences() async throws {
        try await withTestServer(testing: .live) { client, _ in
            let audio = StreamClient.pcm(seconds: 3, bursts: [(0.3, 1.0), (1.6, 2.4)])
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "offline", "wav_name": "meeting", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": true}"#),
                audio: audio)
            #expect(messages.count == 2)
            let message = try #require(messages.first)
            #expect(messages.last?["is_end"] as? Bool == true && messages.last?["is_final"] as? Bool == true)
            #expect(message["mode"] as? String == "offline")
            #expect(message["wav_name"] as? String == "meeting")
            #expect(message["is_final"] as? Bool == false)
            #expect((message["text"] as? String)?.hasPrefix("段") == true)
            let spans = try JSONSerialization.jsonObject(with: Data((message["timestamp"] as? String ?? "").utf8)) as? [[Int]]
            // The fake gives a token every half second of each sentence: at least one each, in order, within the audio.
            let starts = (spans ?? []).compactMap(\.first)
            #expect(starts.count >= 2 && starts == starts.sorted() && starts.allSatisfy { (0...3000).contains($0) }, "\(spans ?? [])")
            let sentences = try #require(message["stamp_sents"] as? [[String: Any]])
            #expect(sentences.count == 2)
            #expect((sentences[1]["start"] as? Int ?? 0) >= 1500)
        }
    }

    @Test func twoPassModeSendsEachSentenceAsItEnds() async throws {
        try await withTestServer(testing: .live) { client, _ in
            // 8 kHz PCM, resampled by the server; three sentences.
            let audio = StreamClient.pcm(seconds: 4, bursts: [(0.2, 0.8), (1.4, 2.0), (2.6, 3.2)], rate: 8000)
            let messages = try await StreamClient(port: client.port!).converse(
                first: .text(#"{"mode": "2pass", "wav_name": "mic", "audio_fs": 8000, "chunk_size": [5, 10, 5], "is_speaking": true}"#),
                audio: audio, chunkBytes: 1600) { received in
                    // Sentences arrive while the client is still speaking.
                    for _ in 0..<250 where received.count < 3 {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    #expect(received.count == 3, "sentences did not arrive before the end flag")
                }
            #expect(messages.count == 4)
            let sentences = messages.dropLast()
            #expect(sentences.allSatisfy { $0["mode"] as? String == "2pass-offline" && $0["is_final"] as? Bool == false })
            let starts = sentences.compactMap { $0["start_time"] as? Int }
            #expect(starts.count == 3 && starts == starts.sorted() && starts[2] >= 2400)
            let final = try #require(messages.last)
            #expect(final["is_final"] as? Bool == true && final["is_end"] as? Bool == true)
            #expect(final["text"] as? String == "", "every sentence was sent already")
        }
    }

    @Test func aMalformedConfigGetsAnErrorAndTheServerStaysUp() async throws {
        try await withTestServer(testing: .live) { client, _ in
            let stream = StreamClient(port: client.port!)
            for first in [WebSocketOutboundWriter.OutboundFrame.text("not json"), .text(#"{"mode": "3pass"}"#),
                          .binary(ByteBuffer(bytes: [1, 2, 3, 4])), .text(#"{"mode": "2pass", "audio_fs": 1}"#)] {
                let messages = try await stream.converse(first: first)
                let error = messages.first?["error"] as? [String: Any]
                #expect(error?["code"] as? String == "invalid_argument", "\(messages)")
                #expect(messages.first?["is_end"] as? Bool == true && messages.first?["is_final"] as? Bool == false)
                #expect(messages.count == 1)
            }
            #expect(try await client.get("/healthz").status == .ok)
            let good = try await stream.converse(first: .text(#"{"mode": "offline"}"#), audio: StreamClient.pcm(seconds: 1, bursts: [(0.2, 0.8)]))
            #expect((good.first?["text"] as? String)?.isEmpty == false)
        }
    }

    /// As FunASR's current Python client (`funasr_wss_client.py`) speaks: the root path with the
    /// `binary` subprotocol, its config (chunk sizes, hotwords from a file joined by commas),
    /// 60 ms frames, both end flags at once. It appends the text of every message and waits
    /// for one carrying `is_end`, which must say `is_final`.
    @Test(arguments: ["offline", "2pass", "online"])
    func funASRsOwnClientIsServedAtTheRootPath(mode: String) async throws {
        try await withTestServer(testing: .live) { client, _ in
            let port = try #require(client.port)
            let audio = StreamClient.pcm(seconds: 4, bursts: [(0.2, 0.8), (1.4, 2.0), (2.6, 3.2)])
            let config = #"{"mode": "\#(mode)", "chunk_size": [5, 10, 5], "chunk_interval": 10, "encoder_chunk_look_back": 4, "#
                + #""decoder_chunk_look_back": 0, "audio_fs": 16000, "wav_name": "demo", "wav_format": "pcm", "is_speaking": true, "#
                + #""hotwords": "阿里巴巴,达摩院", "itn": true}"#
            let texts = try await offThePool {
                let socket = try RawWebSocket(port: port, path: "/", headers: ["Sec-WebSocket-Protocol": "binary"])
                try socket.send(text: config)
                let stride = 60 * 10 / 10 * 16 * 2   // the client's 60 ms of 16 kHz 16-bit samples
                for start in Swift.stride(from: 0, to: audio.count, by: stride) {
                    try socket.send(binary: audio[start..<min(audio.count, start + stride)])
                }
                try socket.send(text: #"{"is_speaking": false, "is_end": true}"#)
                var texts: [String] = []
                while texts.count < 20, let text = try socket.nextText() {
                    texts.append(text)
                    if text.contains("\"is_end\":true") { break }
                }
                return texts
            }
            let messages = texts.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let end = try #require(messages.last)
            #expect(end["is_end"] as? Bool == true && end["is_final"] as? Bool == true, "\(texts)")
            #expect(end["wav_name"] as? String == "demo")
            let results = messages.dropLast()
            let expected = mode == "offline" ? 1 : 3
            #expect(results.count == expected, "\(texts)")
            #expect(results.allSatisfy { $0["mode"] as? String == (mode == "2pass" ? "2pass-offline" : mode) })
            // What the client shows: every text appended. Each sentence appears once.
            let shown = messages.compactMap { $0["text"] as? String }.joined()
            #expect(shown.components(separatedBy: "段").count - 1 == 3, "\(shown)")
        }
    }

    /// A FunASR client that stops reading holds only its own stream: another is served in full
    /// meanwhile, and the idle timeout ends the silent one, whose slot is then free again.
    @Test func aClientThatStopsReadingStallsNoOtherStream() async throws {
        try await withTestServer(testing: .live, setup: { $0.idleTimeoutSeconds = 2; $0.maxStreams = 2 }) { client, _ in
            let port = try #require(client.port)
            // Forty short sentences the stalled client never reads while the other one talks.
            let sentences: [(Double, Double)] = (0..<40).map { index in
                let start = Double(index) * 0.5 + 0.1
                return (start, start + 0.2)
            }
            let stalledAudio = StreamClient.pcm(seconds: 20.5, bursts: sentences)
            async let stalled: [String] = offThePool {
                let socket = try RawWebSocket(port: port, path: "/", headers: ["Sec-WebSocket-Protocol": "binary"], timeout: 30)
                try socket.send(text: #"{"mode": "2pass", "wav_name": "stalled", "is_speaking": true}"#)
                let stride = 60 * 16 * 2
                for start in Swift.stride(from: 0, to: stalledAudio.count, by: stride) {
                    try socket.send(binary: stalledAudio[start..<min(stalledAudio.count, start + stride)])
                }
                // Neither reads nor sends for longer than the idle timeout, then reads everything.
                Thread.sleep(forTimeInterval: 5)
                var texts: [String] = []
                while texts.count < 100, let text = try socket.nextText() { texts.append(text) }
                return texts
            }
            let audio = StreamClient.pcm(seconds: 4, bursts: [(0.2, 0.8), (1.4, 2.0), (2.6, 3.2)])
            let served = try await StreamClient(port: port).converse(
                first: .text(#"{"mode": "2pass", "wav_name": "mic", "is_speaking": true}"#), audio: audio)
            #expect(served.count == 4 && served.last?["is_end"] as? Bool == true, "\(served)")

            let texts = try await stalled
            #expect(texts.filter { $0.contains("2pass-offline") }.count == 40, "\(texts.count) messages")
            #expect(texts.last?.contains("request_timeout") == true, "\(texts.last ?? "nothing")")
            // Both slots are free: two streams at once are served.
            async let first = StreamClient(port: port).converse(first: .text(#"{"mode": "2pass", "is_speaking": true}"#), audio: audio)
            async let second = StreamClient(port: port).converse(first: .text(#"{"mode": "2pass", "is_speaking": true}"#), audio: audio)
            let (one, two) = try await (first, second)
            #expect(one.count == 4 && two.count == 4)
        }
    }
}

/// `--tls-cert` and `--tls-key`: HTTPS and WSS on the same port, with a certificate the test
/// makes (FunASR's clients connect with TLS by default and skip verification).
@Suite struct TLSTests {
    @Test func theServerSpeaksHTTPSAndWSSOnOnePort() async throws {
        let root = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let certificate = root.appendingPathComponent("cert.pem"), key = root.appendingPathComponent("key.pem")
        _ = try await offThePool {
            try Subprocess.run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", certificate.path,
                                           "-days", "1", "-subj", "/CN=localhost"], limits: SubprocessLimits())
        }
        var configuration = ServerConfiguration(port: 0, dataDirectory: root.appendingPathComponent("data"), workers: .init(workers: 1))
        configuration.tls = .init(certificateChain: certificate, privateKey: key)
        try await withListeningServer(configuration: configuration) { bound, _ in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                let health = try await client.execute(HTTPClientRequest(url: "https://127.0.0.1:\(bound)/healthz"), timeout: .seconds(30))
                #expect(health.status == .ok)
                try await client.shutdown()
            } catch {
                try await client.shutdown()
                throw error
            }
            // Plain HTTP on the TLS port gets no answer it could mistake for one.
            let plain = try? await LiveHTTP.request("http://127.0.0.1:\(bound)/healthz")
            #expect(plain?.status != 200)
            let received = Inbox()
            var wsLogger = Logger(label: "ws-test")
            wsLogger.logLevel = .error
            try await WebSocketClient.connect(url: "wss://localhost:\(bound)/", configuration: .init(additionalHeaders: [.secWebSocketProtocol: "binary"]),
                                              tlsConfiguration: tls, logger: wsLogger) { inbound, outbound, _ in
                try await outbound.write(.text(#"{"mode": "offline", "wav_name": "tls", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": true}"#))
                try await outbound.write(.binary(ByteBuffer(bytes: StreamClient.pcm(seconds: 1, bursts: [(0.2, 0.8)]))))
                try await outbound.write(.text(#"{"is_speaking": false, "is_end": true}"#))
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    received.texts.withLock { $0.append(text) }
                    if text.contains("\"is_end\":true") { break }
                }
            }
            let texts = received.texts.withLock { $0 }
            #expect(texts.count == 2 && texts[0].contains("段"), "\(texts)")
        }
    }
}
