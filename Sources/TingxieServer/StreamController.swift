import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TingxieAudio
import TingxieCore
import TingxieJobs
import TingxiePipeline
import TingxieText

/// `GET /v1/stream`: real-time recognition over a WebSocket, in the FunASR runtime protocol so
/// that FunASR clients work unchanged. The client sends a JSON config, then audio (16-bit PCM,
/// or a whole file in `offline` mode), then `{"is_speaking": false}`.
///
/// - `offline`: one message with the whole transcript after the end flag.
/// - `2pass` and `online`: the server runs the VAD on the incoming audio and sends each sentence
///   as soon as it ends (`2pass-offline` messages with its times; with no streaming model there
///   are no word-by-word partials), then a final message with `is_final: true`.
///
/// Audio is capped by the upload byte and duration limits; a malformed config gets an error
/// message and the connection is closed.
struct StreamController {
    let service: JobService
    /// Where live recognitions block; its size is the number of streams served at once.
    let threadPool: NIOThreadPool
    let active: ActiveStreams

    /// Counts live streams against the limit.
    final class ActiveStreams: Sendable {
        let limit: Int
        private let count = Atomic<Int>(0)

        init(limit: Int) { self.limit = limit }

        func enter() -> Bool {
            if count.add(1, ordering: .relaxed).newValue > limit {
                count.subtract(1, ordering: .relaxed)
                return false
            }
            return true
        }

        func leave() { count.subtract(1, ordering: .relaxed) }
    }

    struct Config: Decodable {
        var mode: String?
        var wav_name: String?
        var wav_format: String?
        var audio_fs: Int?
        var is_speaking: Bool?
        var hotwords: String?
        var itn: Bool?
    }

    enum Mode: String { case offline, online, twoPass = "2pass" }

    /// Browsers cannot set headers on a WebSocket, so the key may also come as `?api_key=`.
    private func authorized(_ request: Request) -> Bool {
        let keys = service.configuration.apiKeys
        guard !keys.isEmpty else { return true }
        let header = request.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
        let key: String = header ?? request.uri.queryParameters["api_key"].map { String($0) } ?? ""
        return APIKeyMiddleware<BasicWebSocketRequestContext>.matches(Array(key.utf8), keys.map { Array($0.utf8) })
    }

    func addRoutes(to router: Router<BasicWebSocketRequestContext>) {
        router.ws("/v1/stream") { request, _ in
            .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let session = StreamSession(controller: self, outbound: outbound, logger: context.logger)
            guard authorized(context.request) else {
                try await session.fail(TingxieError(.unauthorized, "this server needs an API key: send Authorization: Bearer <key> or ?api_key=<key>"))
                return
            }
            guard active.enter() else {
                try await session.fail(TingxieError(.queueFull, "\(active.limit) live streams are already running; try again later"))
                return
            }
            defer { active.leave() }
            try await session.run(inbound.messages(maxSize: 16 << 20))
        }
    }
}

extension StreamController {
    /// FunASR sends hotwords as JSON `{"词": weight}` or as space-separated words. Its weights
    /// are integers with 20 as the usual value (its examples' hotword files), so they are
    /// divided by 20 onto Tingxie's scale (1 normal, 0.1-10).
    static func hotwordList(_ text: String?) -> String? {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        if let weights = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            return Hotword.listText(weights.keys.sorted().map { word in
                let weight = (weights[word] as? NSNumber)?.doubleValue ?? funASRNormalWeight
                return Hotword(word, weight: min(Hotword.weightRange.upperBound, max(Hotword.weightRange.lowerBound, weight / funASRNormalWeight)))
            })
        }
        return text.split(separator: " ").joined(separator: "\n")
    }

    static let funASRNormalWeight = 20.0

    /// Live speech with no pause is cut after this long (at 1.5 times at the latest), so that a
    /// speaker who never stops still sees sentences arrive.
    static let liveMaxSpeechSeconds = 15.0
}

/// One WebSocket conversation.
private struct StreamSession {
    let controller: StreamController
    let outbound: WebSocketOutboundWriter
    let logger: Logger
    var service: JobService { controller.service }

    func run(_ messages: WebSocketInboundMessageStream) async throws {
        var iterator = messages.makeAsyncIterator()
        guard case .text(let text)? = try await iterator.next() else {
            return try await fail(TingxieError(.invalidArgument, "the first message must be a JSON text message with the stream's config"))
        }
        let config: StreamController.Config
        let mode: StreamController.Mode
        do {
            config = try JSONDecoder().decode(StreamController.Config.self, from: Data(text.utf8))
            guard let parsed = StreamController.Mode(rawValue: config.mode ?? "offline") else {
                throw TingxieError(.invalidArgument, "mode must be offline, online or 2pass")
            }
            mode = parsed
            guard (8000...48_000).contains(config.audio_fs ?? modelSampleRate) else {
                throw TingxieError(.invalidArgument, "audio_fs must be a sample rate from 8000 to 48000")
            }
            if mode != .offline, (config.wav_format ?? "pcm") != "pcm" {
                throw TingxieError(.invalidArgument, "\(mode.rawValue) mode takes PCM only (wav_format \"pcm\")")
            }
        } catch let error as TingxieError {
            return try await fail(error)
        } catch {
            return try await fail(TingxieError(.invalidArgument, "the config is not valid JSON: \(text.prefix(80))"))
        }
        let hotwords: HotwordMatcher?
        do {
            hotwords = try service.engine.matcher(for: StreamController.hotwordList(config.hotwords))
        } catch let error as TingxieError {
            return try await fail(error)
        }
        logger.info("stream started", metadata: ["mode": "\(mode.rawValue)", "wav_name": "\(config.wav_name ?? "")"])
        do {
            if mode == .offline {
                try await offline(&iterator, config: config, hotwords: hotwords)
            } else {
                try await live(&iterator, config: config, mode: mode, hotwords: hotwords)
            }
        } catch let error as TingxieError {
            try await fail(error, mode: mode.rawValue, name: config.wav_name)
        }
    }

    // MARK: Offline: collect, then transcribe once

    private func offline(_ iterator: inout WebSocketInboundMessageStream.AsyncIterator, config: StreamController.Config,
                         hotwords: HotwordMatcher?) async throws {
        let id = Job.newID()
        let audio = service.uploads.audio
        let url = audio.partialURL(for: id)
        defer { audio.remove(id) }
        let format = config.wav_format ?? "pcm"
        let rate = config.audio_fs ?? modelSampleRate
        var budget = ByteBudget(limit: service.configuration.maxUploadBytes)
        let tooLarge = service.uploads.tooLarge("stream")
        let maxSeconds = service.configuration.maxDurationSeconds
        let writer = format == "pcm" ? try WAVWriter(url: url, sampleRate: rate) : nil
        let file: FileHandle? = format == "pcm" ? nil : try Self.create(url)
        defer { try? file?.close() }
        while let message = try await iterator.next() {
            switch message {
            case .binary(let buffer):
                try budget.spend(buffer.readableBytes, or: tooLarge)
                if let writer {
                    try writer.append(Self.samples(buffer))
                    guard writer.duration <= maxSeconds else {
                        throw TingxieError(.tooLarge, String(format: "the stream is longer than this server's limit of %.0f s", maxSeconds))
                    }
                } else {
                    try file?.write(contentsOf: Data(buffer.readableBytesView))
                }
            case .text(let text):
                guard Self.isEnd(text) else { continue }
                try writer?.finish()
                try file?.close()
                let duration = try await service.uploads.threadPool.runIfActive { try AudioDecoder.duration(of: url) } ?? 0
                guard duration <= maxSeconds else {
                    throw TingxieError(.tooLarge, String(format: "the audio is %.0f s long; this server accepts at most %.0f s", duration, maxSeconds))
                }
                let transcript = duration > 0 ? try await service.engine.pipeline.transcribe(url, hotwords: hotwords) : nil
                try await send(Self.offlineMessage(transcript, name: config.wav_name))
                return
            }
        }
    }

    // MARK: Live: VAD on the incoming audio, a message per sentence

    private func live(_ iterator: inout WebSocketInboundMessageStream.AsyncIterator, config: StreamController.Config,
                      mode: StreamController.Mode, hotwords: HotwordMatcher?) async throws {
        let source = PushedAudioSource(sampleRate: config.audio_fs ?? modelSampleRate)
        let pipeline = try service.engine.pipeline.with(configuration: .init(
            language: service.configuration.language, mergeTargetSeconds: 0, maxSpeechSeconds: StreamController.liveMaxSpeechSeconds))
        let (segments, segmentSink) = AsyncStream.makeStream(of: Transcript.Segment.self)
        let canceled = CancelFlag()
        let label = mode == .online ? "online" : "2pass-offline"
        let maxSeconds = service.configuration.maxDurationSeconds
        var budget = ByteBudget(limit: service.configuration.maxUploadBytes)
        let tooLarge = service.uploads.tooLarge("stream")
        try await withThrowingTaskGroup(of: Transcript?.self) { group in
            group.addTask {
                defer { segmentSink.finish() }
                return try await controller.threadPool.runIfActive {
                    try pipeline.run(source: source, hotwords: hotwords, canceled: canceled.value, progress: nil) { segment in
                        segmentSink.yield(segment)
                    }
                }
            }
            group.addTask {
                for await segment in segments {
                    try await send(["mode": label, "wav_name": config.wav_name ?? "", "text": segment.text,
                                    "start_time": Int(segment.start * 1000), "end_time": Int(segment.end * 1000),
                                    "timestamp": Self.timestampString(segment), "is_final": false])
                }
                return nil
            }
            do {
                receiving: while let message = try await iterator.next() {
                    switch message {
                    case .binary(let buffer):
                        try budget.spend(buffer.readableBytes, or: tooLarge)
                        source.push(Self.samples(buffer))
                        guard source.pushedSeconds <= maxSeconds else {
                            throw TingxieError(.tooLarge, String(format: "the stream is longer than this server's limit of %.0f s", maxSeconds))
                        }
                    case .text(let text):
                        if Self.isEnd(text) { break receiving }
                    }
                }
            } catch {
                canceled.value.store(true, ordering: .relaxed)
                source.end()
                group.cancelAll()
                throw error
            }
            source.end()
            var transcript: Transcript?
            while let result = try await group.next() {
                if let result { transcript = result }
            }
            try await send(["mode": label, "wav_name": config.wav_name ?? "", "text": transcript?.text ?? "",
                            "is_final": true])
        }
    }

    // MARK: Messages

    private static func create(_ url: URL) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
            throw TingxieError(.ioError, "cannot store the stream")
        }
        return handle
    }

    private static func isEnd(_ text: String) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["is_speaking"] as? Bool == false
    }

    /// 16-bit little-endian PCM as floats.
    private static func samples(_ buffer: ByteBuffer) -> [Float] {
        let bytes = buffer.readableBytesView
        var samples = [Float](repeating: 0, count: bytes.count / 2)
        var index = bytes.startIndex
        for i in samples.indices {
            let value = Int16(bitPattern: UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
            samples[i] = Float(value) / 32768
            index += 2
        }
        return samples
    }

    /// `[[start_ms, end_ms], ...]` per token when the model times them, else for the segment.
    private static func timeSpans(_ segment: Transcript.Segment) -> [[Int]] {
        guard let times = segment.timestamps, !times.isEmpty else {
            return [[Int(segment.start * 1000), Int(segment.end * 1000)]]
        }
        return times.indices.map { index in
            [Int(times[index] * 1000), Int((index + 1 < times.count ? times[index + 1] : segment.end) * 1000)]
        }
    }

    /// FunASR sends timestamps as a JSON string.
    private static func timestampString(_ segment: Transcript.Segment) -> String {
        "[" + timeSpans(segment).map { "[\($0[0]),\($0[1])]" }.joined(separator: ",") + "]"
    }

    private static func offlineMessage(_ transcript: Transcript?, name: String?) -> [String: Any] {
        let segments = transcript?.segments ?? []
        let spans = segments.flatMap(timeSpans)
        return [
            "mode": "offline", "wav_name": name ?? "", "text": transcript?.text ?? "", "is_final": false,
            "timestamp": "[" + spans.map { "[\($0[0]),\($0[1])]" }.joined(separator: ",") + "]",
            "stamp_sents": segments.map { segment -> [String: Any] in
                [
                    "text_seg": (segment.tokens ?? segment.text.map(String.init)).joined(separator: " "),
                    "punc": "", "start": Int(segment.start * 1000), "end": Int(segment.end * 1000),
                    "ts_list": timeSpans(segment),
                ]
            },
        ]
    }

    private func send(_ object: [String: Any]) async throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }

    /// Sends the error in the API's shape and closes the connection.
    func fail(_ error: TingxieError, mode: String? = nil, name: String? = nil) async throws {
        logger.info("stream refused", metadata: ["code": "\(error.code.rawValue)", "detail": "\(error.message)"])
        var message: [String: Any] = ["error": ["code": error.code.rawValue, "message": error.message], "is_final": true]
        if let mode { message["mode"] = mode }
        if let name { message["wav_name"] = name }
        try await send(message)
        try await outbound.close(error.code == .unauthorized ? .policyViolation : .unacceptableData, reason: String(error.message.prefix(100)))
    }
}

/// A cancellation flag that can be handed to the blocking pipeline.
private final class CancelFlag: Sendable {
    let value = Atomic<Bool>(false)
}
