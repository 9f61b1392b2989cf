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

/// `GET /v1/stream`, and a WebSocket upgrade on `/` (where FunASR's clients connect; a plain
/// `GET /` is the web UI): real-time recognition in the FunASR runtime protocol, so that FunASR
/// clients work unchanged. The client sends a JSON config, then audio (16-bit PCM, or a whole
/// file in `offline` mode), then `{"is_speaking": false}` or `{"is_end": true}` (current
/// clients send both).
///
/// - `offline`: one message with the whole transcript after the end.
/// - `2pass` and `online`: the server runs the VAD on the incoming audio; while a sentence is
///   spoken, the words its re-recognitions (every `chunk_size[1]` × 60 ms of speech, 0.6 s
///   without one) agree on go out as `2pass-online` (`online`) partials, and each sentence as
///   soon as it ends (`2pass-offline` with its times).
/// - Then the acknowledgement FunASR's clients wait for: `{"mode", "wav_name", "text": "",
///   "is_final": true, "is_end": true}`. It carries no text: clients append every message's
///   text, and every sentence was sent already.
///
/// Audio is capped by the upload byte and duration limits. An error (a malformed config, a
/// limit) is one message, `{"error": {"code", "message"}, "is_final": false, "is_end": true}`,
/// and the connection is closed.
struct StreamController {
    let service: JobService
    /// Where live recognitions block; its size is the number of streams served at once.
    let threadPool: NIOThreadPool
    /// Live streams against `--max-streams`.
    let active: BoundedCount

    /// The key may come as `Authorization: Bearer`, as a subprotocol `tingxie-key.<key>` (what
    /// browsers can send) or, for clients that can do neither (FunASR's), as `?api_key=` (which
    /// proxies may log).
    static func presentedKey(_ request: Request) -> String? {
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") { return String(header.dropFirst(7)) }
        if let key = subprotocols(request).first(where: { $0.hasPrefix(keyProtocolPrefix) }) {
            return String(key.dropFirst(keyProtocolPrefix.count))
        }
        return request.uri.queryParameters["api_key"].map(String.init)
    }

    static let keyProtocolPrefix = "tingxie-key."

    static func subprotocols(_ request: Request) -> [String] {
        request.headers[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func addRoutes(to router: Router<BasicWebSocketRequestContext>) {
        for path in ["/v1/stream", "/"] {
            addRoute(RouterPath(path), to: router)
        }
    }

    private func addRoute(_ path: RouterPath, to router: Router<BasicWebSocketRequestContext>) {
        let hosts = service.configuration.hostNames
        router.ws(path) { request, _ in
            // A request for another host, or another spelling of the path, is not upgraded.
            guard hosts.allows(authority: request.head.authority), RequestPath.isCanonical(request.uri.path) else { return .dontUpgrade }
            // A browser that offers subprotocols needs one back: FunASR's `binary`, or ours.
            let offered = Self.subprotocols(request)
            let chosen = ["binary", "tingxie"].first(where: offered.contains)
            return .upgrade(chosen.map { [.secWebSocketProtocol: $0] } ?? [:])
        } onUpgrade: { inbound, outbound, context in
            let configuration = service.configuration
            let caller = configuration.keys.caller(presenting: Self.presentedKey(context.request))
            let session = StreamSession(controller: self, outbound: outbound, logger: context.logger, owner: caller?.owner)
            guard caller != nil else {
                try await session.fail(TingxieError(.unauthorized, "this server needs an API key: send Authorization: Bearer <key>, the subprotocol tingxie-key.<key>, or ?api_key=<key>"))
                return
            }
            if let origin = context.request.headers[.origin],
               !OriginPolicy(allowed: configuration.corsOrigins, hosts: configuration.hostNames).allows(origin: origin, host: context.request.head.authority) {
                try await session.fail(TingxieError(.forbidden, "streams from the web page at \(origin.prefix(100)) are not allowed; add it with --cors-origin"))
                return
            }
            guard active.enter() else {
                try await session.fail(TingxieError(.queueFull, "\(active.limit) live streams are already running; try again later"))
                return
            }
            defer { active.leave() }
            try await session.runWatched(inbound.messages(maxSize: 16 << 20))
        }
    }
}

extension StreamController {
    /// Live speech with no pause is cut after this long (at 1.5 times at the latest), so that a
    /// speaker who never stops still sees sentences arrive.
    static let liveMaxSpeechSeconds = 15.0
}

/// One WebSocket conversation.
private struct StreamSession {
    let controller: StreamController
    let outbound: WebSocketOutboundWriter
    let logger: Logger
    /// Whose jobs an offline stream makes (its key's hash).
    let owner: String?
    let activity = Activity()
    var service: JobService { controller.service }

    /// How the client has kept up: when audio last arrived, how much, and how long the server
    /// itself kept the conversation waiting (recognition behind, the result being made), which
    /// never counts against the client.
    final class Activity: Sendable {
        private let started = Activity.now()
        private let lastAudio = Atomic<UInt64>(Activity.now())
        private let audioMilliseconds = Atomic<Int>(0)
        private let busy = Atomic<Int>(0)
        private let busySince = Atomic<UInt64>(0)
        private let busyNanoseconds = Atomic<UInt64>(0)

        static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

        /// Nanoseconds from `start` to `end`; 0 when another task stored a later `start`.
        static func elapsed(since start: UInt64, until end: UInt64) -> UInt64 { end > start ? end - start : 0 }

        /// Audio arrived: only audio resets the idle clock.
        func heard(seconds: Double) {
            audioMilliseconds.add(Int(seconds * 1000), ordering: .relaxed)
            lastAudio.store(Self.now(), ordering: .relaxed)
        }

        /// Runs `body` as server-side work: the client's clocks do not run meanwhile.
        func serverWork<T>(_ body: () async throws -> T) async rethrows -> T {
            if busy.add(1, ordering: .relaxed).newValue == 1 { busySince.store(Self.now(), ordering: .relaxed) }
            defer {
                if busy.subtract(1, ordering: .relaxed).newValue == 0 {
                    let now = Self.now()
                    busyNanoseconds.add(Self.elapsed(since: busySince.load(ordering: .relaxed), until: now), ordering: .relaxed)
                    lastAudio.store(now, ordering: .relaxed)
                }
            }
            return try await body()
        }

        /// The limit the client is past, if any.
        func violation(of limits: ServerConfiguration.StreamLimits, idleTimeout: Double) -> TingxieError? {
            guard busy.load(ordering: .relaxed) == 0 else { return nil }
            let now = Self.now()
            // The reading task may store a later time than `now` meanwhile: never negative.
            let idle = Double(Self.elapsed(since: lastAudio.load(ordering: .relaxed), until: now)) / 1e9
            if idle >= idleTimeout {
                return TingxieError(.requestTimeout, String(format: "no audio arrived for %.0f s; the stream is closed", idleTimeout))
            }
            let session = Double(Self.elapsed(since: started, until: now)) / 1e9
            if session >= limits.maxSession.seconds {
                return TingxieError(.requestTimeout, String(format: "the stream reached this server's longest session (%.0f min, --max-stream-minutes); start a new one",
                                                            limits.maxSession.seconds / 60))
            }
            let clientSeconds = session - Double(busyNanoseconds.load(ordering: .relaxed)) / 1e9
            let audio = Double(audioMilliseconds.load(ordering: .relaxed)) / 1000
            if clientSeconds >= limits.rateGrace.seconds, audio < limits.minAudioRate * clientSeconds {
                return TingxieError(.requestTimeout, String(format: "audio arrived at %.2fx real time; streams must send at least %.2fx (--stream-min-rate) after the first %.0f s",
                                                            audio / clientSeconds, limits.minAudioRate, limits.rateGrace.seconds))
            }
            return nil
        }
    }

    /// Runs the conversation; a client that sends no audio for the idle timeout, too little
    /// audio for the time it holds the stream, or stays past the longest session (while the
    /// server waits for it) gets a `request_timeout` error saying which, and is closed.
    func runWatched(_ messages: WebSocketInboundMessageStream) async throws {
        let timeout = Double(service.configuration.idleTimeoutSeconds)
        let limits = service.configuration.streamLimits
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await run(messages) }
            group.addTask {
                while true {
                    if let violation = activity.violation(of: limits, idleTimeout: timeout) {
                        return try await fail(violation)
                    }
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    func run(_ messages: WebSocketInboundMessageStream) async throws {
        var iterator = messages.makeAsyncIterator()
        guard case .text(let text)? = try await iterator.next() else {
            return try await fail(TingxieError(.invalidArgument, "the first message must be a JSON text message with the stream's config"))
        }
        let config: FunASRConfig
        let matcher: HotwordMatcher?
        do {
            config = try FunASRConfig(json: text, defaultSampleRate: modelSampleRate)
            matcher = try service.engine.matcher(for: config.hotwords)
        } catch let error as TingxieError {
            return try await fail(error)
        }
        let mode = config.mode
        logger.info("stream started", metadata: ["mode": "\(mode.rawValue)", "wav_name": "\(config.wavName ?? "")"])
        do {
            if mode == .offline {
                try await offline(&iterator, config: config)
            } else {
                try await live(&iterator, config: config, hotwords: matcher)
            }
        } catch let error as TingxieError {
            try await fail(error, mode: mode.rawValue, name: config.wavName)
        }
    }

    // MARK: Offline: collect, then transcribe as a job

    /// The audio is stored and queued as a job, with the admission, limits, timeout and retries
    /// of every upload: its place in the queue is taken before any audio is read, and a client
    /// that leaves before the result cancels the job.
    private func offline(_ iterator: inout WebSocketInboundMessageStream.AsyncIterator, config: FunASRConfig) async throws {
        let gauge = service.gauge
        let reservation = try gauge.reserve()
        defer { gauge.release(reservation) }
        let id = Job.newID()
        let audio = service.uploads.audio
        let url = audio.partialURL(for: id)
        var queued = false
        defer { if !queued { audio.remove(id) } }
        let format = config.wavFormat
        var budget = ByteBudget(limit: service.configuration.maxUploadBytes)
        let tooLarge = service.uploads.tooLarge("stream")
        let maxSeconds = service.configuration.maxDurationSeconds
        let writer = format == "pcm" ? try WAVWriter(url: url, sampleRate: config.sampleRate) : nil
        let file: FileHandle? = format == "pcm" ? nil : try audio.createPartial(for: id)
        defer { try? file?.close() }
        var ended = false
        var framer = PCMFramer()
        receiving: while let message = try await iterator.next() {
            switch message {
            case .binary(let buffer):
                try budget.spend(buffer.readableBytes, or: tooLarge)
                // PCM counts as what it is; a compressed file as 2 KB a second (16 kbit/s, the
                // least a speech codec sends), so that no honest sender falls below the rate.
                activity.heard(seconds: Double(buffer.readableBytes) / (format == "pcm" ? Double(2 * config.sampleRate) : 2000))
                if let writer {
                    try writer.append(framer.samples(buffer.readableBytesView))
                    guard writer.duration <= maxSeconds else {
                        throw TingxieError(.tooLarge, String(format: "the stream is longer than this server's limit of %.0f s", maxSeconds))
                    }
                } else {
                    try file?.write(contentsOf: Data(buffer.readableBytesView))
                }
            case .text(let text):
                if FunASRConfig.endsInput(text) {
                    ended = true
                    break receiving
                }
            }
        }
        // A client that left before its end flag wants nothing more.
        guard ended else { return }
        try writer?.finish()
        try file?.close()
        var upload = ReceivedUpload(files: [.init(id: id, filename: UploadReceiver.displayName(config.wavName), bytes: budget.spent, durationS: 0)],
                                    fields: config.hotwords.map { ["hotwords": $0] } ?? [:])
        guard budget.spent > 0 else {
            try await send(Self.offlineMessage(nil, name: config.wavName))
            return try await acknowledgeEnd(mode: "offline", name: config.wavName)
        }
        try await activity.serverWork {
            try await service.uploads.measure(&upload, reservation: reservation)
            try audio.commit(id)
            queued = true
            let job = try await service.queue(upload, reservation: reservation, owner: owner)[0]
            try await answer(job, config: config, whileReading: &iterator)
        }
    }

    /// Sends the job's result (or its error) when it is done, then closes; meanwhile the socket
    /// is read, and a client that goes away first cancels the job: nobody will collect it.
    private func answer(_ job: Job, config: FunASRConfig,
                        whileReading iterator: inout WebSocketInboundMessageStream.AsyncIterator) async throws {
        let timeout = service.configuration.workers.timeout(for: job) + .seconds(600)
        let answered = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    let finished = try await service.waitForResult(job.id, timeout: timeout)
                    if finished.status == .failed, let error = finished.error { throw error }
                    try await send(Self.offlineMessage(try await service.transcript(of: finished), name: config.wavName))
                    try await acknowledgeEnd(mode: "offline", name: config.wavName)
                    answered.value.store(true, ordering: .relaxed)
                    try await outbound.close(.normalClosure, reason: nil)
                } catch let error as TingxieError {
                    answered.value.store(true, ordering: .relaxed)
                    try await fail(error, mode: "offline", name: config.wavName)
                }
            }
            while try await iterator.next() != nil {}
            if !answered.value.load(ordering: .relaxed) {
                logger.info("stream client left before its result; job canceled", metadata: ["job": "\(job.id)"])
                _ = try? await service.cancel(job.id, for: .server)
                group.cancelAll()
            }
        }
    }

    // MARK: Live: VAD on the incoming audio, a message per sentence

    private func live(_ iterator: inout WebSocketInboundMessageStream.AsyncIterator, config: FunASRConfig,
                      hotwords: HotwordMatcher?) async throws {
        let source = PushedAudioSource(sampleRate: config.sampleRate)
        let defaults = TranscriptionPipeline.Configuration()
        let partialShare = service.configuration.livePartialShare
        let pipeline = try service.engine.pipeline.with(configuration: .init(
            // A message per VAD sentence, which its partials were shown for: not cut at pauses.
            language: service.configuration.language, mergeTargetSeconds: 0, maxSpeechSeconds: StreamController.liveMaxSpeechSeconds,
            splitsAtStretches: false,
            partialIntervalSeconds: config.partialIntervalSeconds ?? defaults.partialIntervalSeconds, partialShare: partialShare))
        enum Event: Sendable { case partial(TranscriptionPipeline.PartialText), sentence(Transcript.Segment) }
        let (events, eventSink) = AsyncStream.makeStream(of: Event.self)
        let canceled = Flag()
        let label = config.mode == .online ? "online" : "2pass-offline"
        let partialLabel = config.mode == .online ? "online" : "2pass-online"
        let maxSeconds = service.configuration.maxDurationSeconds
        var budget = ByteBudget(limit: service.configuration.maxUploadBytes)
        let tooLarge = service.uploads.tooLarge("stream")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { eventSink.finish() }
                let transcript = try await controller.threadPool.runIfActive {
                    try pipeline.run(source: source, hotwords: hotwords, canceled: canceled.value, progress: nil,
                                     onSegment: { eventSink.yield(.sentence($0)) },
                                     onPartial: partialShare > 0 ? { eventSink.yield(.partial($0)) } : nil)
                }
                // A live stream's transcript is not kept: its gaps are counted and logged.
                service.metrics.countGaps(transcript)
                if let warning = transcript.warnings?.last, transcript.gaps != nil {
                    logger.warning("live stream: \(warning)")
                }
            }
            group.addTask {
                // FunASR clients append each partial to what they show: only newly agreed text goes out.
                var agreement = LocalAgreement()
                for await event in events {
                    switch event {
                    case .partial(let partial):
                        let added = agreement.update(partial.text, settled: !partial.revisable)
                        guard !added.isEmpty else { continue }
                        try await send(["mode": partialLabel, "wav_name": config.wavName ?? "", "text": added, "is_final": false])
                    case .sentence(let segment):
                        // 2pass: the final sentence replaces the partials. online: only what they lacked,
                        // unless the final result revised them.
                        let unseen = agreement.finish(segment.text)
                        let text = config.mode == .online ? unseen : segment.text
                        try await send(["mode": label, "wav_name": config.wavName ?? "", "text": text,
                                        "start_time": Int(segment.start * 1000), "end_time": Int(segment.end * 1000),
                                        "timestamp": Self.timestampString(segment), "is_final": false])
                    }
                }
            }
            func stop() {
                canceled.value.store(true, ordering: .relaxed)
                source.end()
                group.cancelAll()
            }
            var ended = false
            var framer = PCMFramer()
            do {
                receiving: while let message = try await iterator.next() {
                    switch message {
                    case .binary(let buffer):
                        try budget.spend(buffer.readableBytes, or: tooLarge)
                        // Waits while recognition is behind: the socket is not read meanwhile.
                        let samples = framer.samples(buffer.readableBytesView)
                        activity.heard(seconds: Double(samples.count) / Double(config.sampleRate))
                        await activity.serverWork { await source.push(samples) }
                        guard source.pushedSeconds <= maxSeconds else {
                            throw TingxieError(.tooLarge, String(format: "the stream is longer than this server's limit of %.0f s", maxSeconds))
                        }
                    case .text(let text):
                        if FunASRConfig.endsInput(text) {
                            ended = true
                            break receiving
                        }
                    }
                }
            } catch {
                stop()
                throw error
            }
            // A client that left before its end flag wants nothing more: stop its work.
            guard ended else { return stop() }
            source.end()
            // Every sentence has been sent when recognition and the sender are done.
            try await activity.serverWork { try await group.waitForAll() }
            try await acknowledgeEnd(mode: label, name: config.wavName)
        }
    }

    // MARK: Messages

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
            // As FunASR's: a sentence's words without punctuation, and the mark that ends it.
            "stamp_sents": segments.map { segment -> [String: Any] in
                [
                    "text_seg": (segment.tokens ?? segment.text.filter { !$0.isPunctuation }.map(String.init)).joined(separator: " "),
                    "punc": segment.text.last.flatMap { $0.isPunctuation ? String($0) : nil } ?? "",
                    "start": Int(segment.start * 1000), "end": Int(segment.end * 1000),
                    "ts_list": timeSpans(segment),
                ]
            },
        ]
    }

    private func send(_ object: [String: Any]) async throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }

    /// The end of a conversation, as FunASR's clients wait for it: no text (each sentence was
    /// sent once already), `is_final` and `is_end`.
    private func acknowledgeEnd(mode: String, name: String?) async throws {
        try await send(["mode": mode, "wav_name": name ?? "", "text": "", "is_final": true, "is_end": true])
    }

    /// Sends the error in the API's shape, as the end FunASR's clients wait for (`is_end` with
    /// `is_final: false`), and closes the connection.
    func fail(_ error: TingxieError, mode: String? = nil, name: String? = nil) async throws {
        logger.info("stream refused", metadata: ["code": "\(error.code.rawValue)", "detail": "\(error.message)"])
        var message: [String: Any] = ["error": ["code": error.code.rawValue, "message": error.message], "is_final": false, "is_end": true]
        if let mode { message["mode"] = mode }
        if let name { message["wav_name"] = name }
        try await send(message)
        try await outbound.close(error.code == .unauthorized ? .policyViolation : .unacceptableData, reason: String(error.message.prefix(100)))
    }
}

/// A flag tasks share: a cancellation flag that can be handed to the blocking pipeline, say.
private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
